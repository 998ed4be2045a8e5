#!/usr/bin/env bash
# Builds the prebuilds this Linux x86-64 host can make and proves each works:
#
#  linux-x64    the whole vitest suite, in a copy of the project with no build/
#               and PREBUILDS_ONLY=1, so only prebuilds/linux-x64 can load
#  linux-arm64  cross-built, then scripts/smoke-arm64.js: server and client on
#               the arm64 Node binary under qemu-aarch64-static
#  win32-x64    mingw-w64 smoke build (not shipped): objdump must show a PE DLL
#               exporting the Node-API entry points and importing only system
#               DLLs and node.exe
#
# Usage: bash scripts/test-prebuilds.sh [--no-build] [x64|arm64|win32 ...]
#   --no-build  test the prebuilds already in prebuilds/ (and build-cross/mingw-smoke/)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BUILD=1
PARTS=()
for a in "$@"; do
  case "$a" in
    --no-build) BUILD=0 ;;
    x64|arm64|win32) PARTS+=("$a") ;;
    *) echo "usage: bash scripts/test-prebuilds.sh [--no-build] [x64|arm64|win32 ...]" >&2; exit 2 ;;
  esac
done
[ ${#PARTS[@]} -eq 0 ] && PARTS=(x64 arm64 win32)

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "test-prebuilds: needs a Linux x86-64 host (this is $(uname -s)-$(uname -m))" >&2
  exit 1
fi

say() { printf '\n== test-prebuilds: %s\n' "$*"; }
fail() { printf 'test-prebuilds: FAILED: %s\n' "$*" >&2; exit 1; }

COPY=""
cleanup() { if [ -n "$COPY" ]; then rm -rf "$COPY"; fi; }
trap cleanup EXIT

[ -f dist/cjs/index.js ] || { say "dist/ missing: building TypeScript"; node scripts/build-ts.js; }

part_x64() {
  local pb=prebuilds/linux-x64/beuss.node
  if [ "$BUILD" = 1 ]; then say "building linux-x64"; node scripts/prebuildify.js linux-x64; fi
  [ -f "$pb" ] || fail "$pb is missing"
  node scripts/prebuildify.js --check linux-x64

  # Only the two Node-API entry points should leave the addon.
  local exports
  exports="$(nm -D --defined-only "$pb" | awk '{print $3}' | sort | tr '\n' ' ')"
  echo "exported symbols: $exports"
  case " $exports " in *" napi_register_module_v1 "*) ;; *) fail "$pb does not export napi_register_module_v1" ;; esac

  # A copy of the project without build/, so nothing but the prebuild can load,
  # whatever the tests or the server resolve.
  COPY="$(mktemp -d "${TMPDIR:-/tmp}/beuss-prebuilt.XXXXXX")"
  tar -C "$ROOT" --exclude=./node_modules --exclude=./build --exclude='./build-*' --exclude=./.git -cf - . | tar -C "$COPY" -xf -
  ln -s "$ROOT/node_modules" "$COPY/node_modules"
  [ ! -e "$COPY/build" ] || fail "the copy has a build/ folder"
  local resolved
  resolved="$(cd "$COPY" && PREBUILDS_ONLY=1 node -p "require('node-gyp-build').resolve('.')")"
  [ "$resolved" = "$COPY/$pb" ] || fail "node-gyp-build resolves $resolved, expected $COPY/$pb"
  echo "node-gyp-build resolves ${resolved#"$COPY"/}"

  say "linux-x64: the vitest suite against prebuilds/linux-x64 only (PREBUILDS_ONLY=1, no build/)"
  (cd "$COPY" && PREBUILDS_ONLY=1 CI="${CI:-true}" node node_modules/vitest/vitest.mjs run)
  rm -rf "$COPY"; COPY=""
}

part_arm64() {
  if [ "$BUILD" = 1 ]; then say "building linux-arm64 (cross)"; node scripts/prebuildify.js linux-arm64; fi
  node scripts/prebuildify.js --check linux-arm64
  say "linux-arm64: smoke test under qemu"
  node scripts/smoke-arm64.js
}

part_win32() {
  local dll=build-cross/mingw-smoke/prebuilds/win32-x64/beuss.node
  if [ "$BUILD" = 1 ]; then say "building win32-x64 (mingw-w64 smoke build)"; node scripts/prebuildify.js win32-x64; fi
  [ -f "$dll" ] || fail "$dll is missing"
  echo "file: $(file -b "$dll")"
  file -b "$dll" | grep -q 'PE32+ executable (DLL)' || fail "$dll is not a PE32+ DLL"
  file -b "$dll" | grep -q 'x86-64' || fail "$dll is not x86-64"

  local dump dlls bad
  dump="$(x86_64-w64-mingw32-objdump -p "$dll")"
  dlls="$(printf '%s\n' "$dump" | sed -n 's/^[[:space:]]*DLL Name: //p' | sort -u)"
  echo "imported DLLs: $(echo $dlls)"
  [ -n "$dlls" ] || fail "objdump found no imports in $dll"
  # System runtime and node.exe only: no libgcc/libstdc++/winpthread DLLs that
  # a Windows machine would not have.
  bad="$(printf '%s\n' "$dlls" | grep -viE '^(kernel32\.dll|msvcrt\.dll|ucrtbase\.dll|node\.exe|api-ms-win-.*\.dll)$' || true)"
  [ -z "$bad" ] || fail "$dll imports DLLs a Windows machine may lack: $(echo $bad)"
  printf '%s\n' "$dlls" | grep -qi '^node\.exe$' || fail "$dll does not import Node-API from node.exe"
  local exported
  exported="$(printf '%s\n' "$dump" | sed -n '/\[Ordinal\/Name Pointer\] Table/,/^$/p' | tail -n +2 | awk '/\]/{print $NF}' | sort | tr '\n' ' ')"
  echo "exported: $exported"
  case " $exported " in *" napi_register_module_v1 "*) ;; *) fail "$dll does not export napi_register_module_v1" ;; esac
}

# Each part runs on even when another failed, so one run shows every result.
FAILED=()
for p in "${PARTS[@]}"; do
  start=$SECONDS
  set +e
  ( set -euo pipefail; trap cleanup EXIT; "part_$p" )
  rc=$?
  set -e
  if [ "$rc" = 0 ]; then say "$p passed in $((SECONDS - start)) s"; else say "$p FAILED (exit $rc) in $((SECONDS - start)) s"; FAILED+=("$p"); fi
done
if [ ${#FAILED[@]} -ne 0 ]; then
  echo "test-prebuilds: FAILED: ${FAILED[*]}" >&2
  exit 1
fi
say "all passed: ${PARTS[*]}"
