#!/usr/bin/env bash
# Installs beuss from its packed tarball, as a user would, and checks it works:
#
#  A. with a prebuild for this host and cmake, make, C/C++ compilers and python
#     hidden from PATH: the install uses the prebuild; `require('beuss')` and
#     `import` both load, types resolve for both, the installed beuss-server
#     starts and maps prebuilds/<target>/beuss.node, and the installed beuss CLI
#     round-trips binary data through it;
#  B. from a tarball with no prebuild and no compiler: the install fails with a
#     message naming the platform and what to install;
#  C. from a tarball with no prebuild, compilers present: the install compiles
#     the addon from source with cmake-js, and the server and CLI work with it;
#  D. the full tarball with npm_config_build_from_source=true (what
#     `npm install --build-from-source` sets): compiles although a prebuild
#     matches, and the server loads the compiled addon (build/ comes first).
#
# Usage: bash scripts/test-pack.sh     (KEEP=1 keeps the work folder)
# Needs the npm registry (or npm's cache) for the package's dependencies.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET="$(node -p 'process.platform + "-" + process.arch')"
NODE="$(command -v node)"
NPM="$(command -v npm)"
TSC="$ROOT/node_modules/typescript/bin/tsc"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/beuss-pack.XXXXXX")"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill "$SERVER_PID" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "test-pack: work folder kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

say() { printf '\n== test-pack: %s\n' "$*"; }
fail() { printf 'test-pack: FAILED: %s\n' "$*" >&2; exit 1; }

# --- the tarball --------------------------------------------------------------
if [ ! -f "prebuilds/$TARGET/beuss.node" ]; then
  say "no prebuilds/$TARGET/beuss.node yet: building it"
  node scripts/prebuildify.js
fi
say "npm pack (its prepare script builds dist/)"
TGZ_NAME="$(npm pack --pack-destination "$WORK" --silent | tail -n 1)"
TGZ="$WORK/$TGZ_NAME"
[ -f "$TGZ" ] || fail "npm pack did not write $TGZ"
ls -l "$TGZ"
tar -tzf "$TGZ" | sort > "$WORK/contents.txt"
echo "$(wc -l < "$WORK/contents.txt") files"
for f in package/package.json package/prebuilds/"$TARGET"/beuss.node package/dist/cjs/index.js \
  package/dist/cjs/index.d.ts package/dist/esm/index.js package/dist/esm/index.d.ts package/bin/beuss.js \
  package/bin/beuss-server.js package/scripts/install.js package/CMakeLists.txt package/native/CMakeLists.txt \
  package/native/include/beuss.h package/binding/CMakeLists.txt; do
  grep -qxF "$f" "$WORK/contents.txt" || fail "the tarball lacks $f"
done
if grep -E '^package/(build|build-cross|node_modules|test|\.git|\.ci)/' "$WORK/contents.txt"; then
  fail "the tarball ships build or development folders (above)"
fi
echo "tarball contents: ok (prebuilds: $(grep -c '^package/prebuilds/.*\.node$' "$WORK/contents.txt"))"

# --- a PATH with node and npm but no build tools --------------------------------
NOCC="$WORK/nocc-bin"
mkdir -p "$NOCC"
ln -s "$NODE" "$NOCC/node"
ln -s "$NPM" "$NOCC/npm"
for t in sh bash env cat ls mkdir rm cp mv chmod ln tar gzip uname grep sed head tail sleep printf true false \
  dirname basename readlink id od cmp wc sort tr cut; do
  p="$(command -v "$t" || true)"
  [ -n "$p" ] && ln -sf "$p" "$NOCC/$t"
done
for t in cmake cc c++ gcc g++ clang clang++ make ninja python python3; do
  if PATH="$NOCC" command -v "$t" >/dev/null 2>&1; then fail "$t is still on the restricted PATH"; fi
done

# npm install into an empty consumer project; $1 folder, $2 tarball, $3 PATH.
install_into() {
  local dir="$1" tgz="$2" path="$3"
  mkdir -p "$dir"
  printf '{ "name": "consumer", "version": "1.0.0", "private": true }\n' > "$dir/package.json"
  (cd "$dir" && PATH="$path" "$NODE" "$NPM" install --no-audit --no-fund --prefer-offline --foreground-scripts "$tgz")
}

# Starts the installed beuss-server on a free port with $1 as PATH; sets PORT.
start_server() {
  local dir="$1" path="$2"
  : > "$WORK/server.log"
  (cd "$dir" && exec env -u BHOST -u BPORT -u BMAXMESSAGESIZE PATH="$path" node_modules/.bin/beuss-server --host 127.0.0.1 --port 0) \
    > "$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  PORT=""
  for _ in $(seq 1 150); do
    PORT="$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\).*/\1/p' "$WORK/server.log" | head -n 1)"
    [ -n "$PORT" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log"; fail "the installed beuss-server exited"; }
    sleep 0.1
  done
  [ -n "$PORT" ] || { cat "$WORK/server.log"; fail "the installed beuss-server did not listen within 15 s"; }
  echo "installed beuss-server listening on 127.0.0.1:$PORT (pid $SERVER_PID)"
}

stop_server() {
  kill "$SERVER_PID"
  local code=0
  wait "$SERVER_PID" || code=$?
  SERVER_PID=""
  [ "$code" = 0 ] || { cat "$WORK/server.log"; fail "beuss-server exited with $code on SIGTERM"; }
}

# Checks the running server mapped the addon file $1 (what it really loaded).
check_mapped() {
  local want="$1"
  if ! grep -qF "$want" "/proc/$SERVER_PID/maps"; then
    echo "mapped .node files:"; grep '\.node$' "/proc/$SERVER_PID/maps" | awk '{print $NF}' | sort -u
    fail "beuss-server did not load $want"
  fi
  echo "beuss-server loaded ${want#"$WORK"/}"
}

# Round-trips binary bytes through the installed CLI ($1 folder, $2 PATH).
cli_round_trip() {
  local dir="$1" path="$2" q="pack-$$"
  head -c 3000 /dev/urandom > "$WORK/in.bin"
  printf '\0\r\n' >> "$WORK/in.bin"
  (cd "$dir" && BHOST=127.0.0.1 BPORT="$PORT" PATH="$path" node_modules/.bin/beuss PUT "$q" < "$WORK/in.bin")
  (cd "$dir" && BHOST=127.0.0.1 BPORT="$PORT" PATH="$path" node_modules/.bin/beuss GET "$q" > "$WORK/out.bin")
  cmp "$WORK/in.bin" "$WORK/out.bin" || fail "the CLI did not get back the bytes it put"
  echo "installed beuss CLI: PUT then GET of $(wc -c < "$WORK/in.bin") binary bytes round-tripped"
}

# --- A: prebuild, no compiler ----------------------------------------------------
say "A: install the tarball with no compiler, cmake or make on PATH"
A="$WORK/a"
start=$SECONDS
install_into "$A" "$TGZ" "$NOCC" > "$WORK/a-install.log" 2>&1 || { cat "$WORK/a-install.log"; fail "npm install of the tarball failed without a compiler"; }
grep -E '^(beuss:|added )' "$WORK/a-install.log" || true
echo "install took $((SECONDS - start)) s"
PKG="$A/node_modules/beuss"
grep -q "using the native addon prebuilds/$TARGET/beuss.node" "$WORK/a-install.log" || fail "the install did not report using the prebuild"
[ ! -e "$PKG/build" ] || fail "the install made a build/ folder: it compiled instead of using the prebuild"

cat > "$A/check.cjs" <<'EOF'
const assert = require('node:assert');
const beuss = require('beuss');
for (const k of ['connect', 'Client', 'Consumer', 'Message', 'BeussError']) assert.ok(beuss[k], `require('beuss').${k} is missing`);
const file = require('node-gyp-build').resolve(require('node:path').dirname(require.resolve('beuss/package.json')));
assert.match(file, /prebuilds[\\/][^\\/]+[\\/]beuss\.node$/, `node-gyp-build resolves ${file}`);
(async () => {
  const c = await beuss.connect({ host: '127.0.0.1', port: Number(process.argv[2]) });
  assert.strictEqual(await c.put('cjs', 'from require'), 12);
  assert.strictEqual((await c.get('cjs')).toString(), 'from require');
  await c.close();
  console.log(`require('beuss'): ok, addon ${file}`);
})().catch((e) => { console.error(e); process.exit(1); });
EOF
cat > "$A/check.mjs" <<'EOF'
import assert from 'node:assert';
import { connect, Client, Message } from 'beuss';
import * as all from 'beuss';
assert.strictEqual(typeof connect, 'function');
assert.ok(Client && Message && all.BeussError, 'named ES exports are missing');
const c = await connect({ host: '127.0.0.1', port: Number(process.argv[2]) });
assert.strictEqual(await c.put('esm', 'from import'), 11);
assert.strictEqual((await c.get('esm')).toString(), 'from import');
await c.close();
console.log("import 'beuss': ok");
EOF
# Types: one CommonJS and one ES module consumer, checked with the project's tsc.
cat > "$A/types-cjs.cts" <<'EOF'
import beuss = require('beuss');
export async function f(): Promise<number> {
  const c: beuss.Client = await beuss.connect({ port: 6552 });
  const n: number = await c.put('q', Buffer.from('x'));
  const m: Buffer | null = await c.get('q');
  return n + (m ? m.length : 0);
}
EOF
cat > "$A/types-esm.mts" <<'EOF'
import { connect, type Client, type Message } from 'beuss';
export async function g(): Promise<string> {
  const c: Client = await connect();
  for await (const m of c.consume('q', { max: 1 })) return (m satisfies Message).text();
  return '';
}
EOF
printf '{ "compilerOptions": { "module": "nodenext", "moduleResolution": "nodenext", "target": "es2022", "strict": true, "noEmit": true, "types": ["node"] }, "files": ["types-cjs.cts", "types-esm.mts"] }\n' > "$A/tsconfig.json"
# The consumer's own @types/node, borrowed from this checkout.
mkdir -p "$A/node_modules/@types"
ln -sfn "$ROOT/node_modules/@types/node" "$A/node_modules/@types/node"
(cd "$A" && "$NODE" "$TSC" -p tsconfig.json) || fail "the package's types do not check for CommonJS and ES module consumers"
echo "types: ok for CommonJS (.cts) and ES module (.mts) consumers"

start_server "$A" "$NOCC"
check_mapped "$PKG/prebuilds/$TARGET/beuss.node"
(cd "$A" && PATH="$NOCC" node check.cjs "$PORT") || fail "require('beuss') check failed"
(cd "$A" && PATH="$NOCC" node check.mjs "$PORT") || fail "import 'beuss' check failed"
cli_round_trip "$A" "$NOCC"
stop_server

# --- B and C: no prebuild -----------------------------------------------------------
mkdir -p "$WORK/repack"
tar -xzf "$TGZ" -C "$WORK/repack"
rm -rf "$WORK/repack/package/prebuilds"
NOPRE="$WORK/beuss-noprebuild.tgz"
tar -czf "$NOPRE" -C "$WORK/repack" package

say "B: install a tarball without prebuilds, with no compiler on PATH: must fail clearly"
B="$WORK/b"
set +e
install_into "$B" "$NOPRE" "$NOCC" > "$WORK/b-install.log" 2>&1
code=$?
set -e
cat "$WORK/b-install.log" | grep 'beuss:' || true
[ "$code" != 0 ] || fail "the install succeeded with neither a prebuild nor a compiler"
grep -q "beuss: no usable prebuilt addon for $TARGET" "$WORK/b-install.log" || fail "the failure does not name the platform ($TARGET)"
grep -q "beuss: Compiling it from source needs tools this machine lacks: cmake" "$WORK/b-install.log" || fail "the failure does not say cmake is missing"
grep -q "then run: npm rebuild beuss" "$WORK/b-install.log" || fail "the failure does not say how to retry"
echo "install failed as it should (exit $code) with the message above"

say "C: install a tarball without prebuilds, compilers present: must compile from source"
C="$WORK/c"
start=$SECONDS
install_into "$C" "$NOPRE" "$PATH" > "$WORK/c-install.log" 2>&1 || { tail -n 40 "$WORK/c-install.log"; fail "the source build from the tarball failed"; }
echo "install with compile took $((SECONDS - start)) s"
grep 'beuss:' "$WORK/c-install.log"
ADDON="$C/node_modules/beuss/build/Release/beuss_native.node"
[ -f "$ADDON" ] || fail "no $ADDON after a source install"
echo "file: $(file -b "$ADDON")"
start_server "$C" "$PATH"
check_mapped "$ADDON"
cli_round_trip "$C" "$PATH"
stop_server

say "D: install the full tarball with npm_config_build_from_source=true: must compile although a prebuild matches"
D="$WORK/d"
install_into_env() { npm_config_build_from_source=true install_into "$@"; }
install_into_env "$D" "$TGZ" "$PATH" > "$WORK/d-install.log" 2>&1 || { tail -n 40 "$WORK/d-install.log"; fail "the forced source build failed"; }
grep 'beuss:' "$WORK/d-install.log"
grep -q 'building from source as requested' "$WORK/d-install.log" || fail "the install did not honour npm_config_build_from_source"
ADDON="$D/node_modules/beuss/build/Release/beuss_native.node"
[ -f "$ADDON" ] || fail "no $ADDON after a forced source install"
start_server "$D" "$PATH"
check_mapped "$ADDON"
stop_server

say "all passed: A (prebuild, no compiler), B (no prebuild, no compiler: clear failure), C (source build), D (forced source build)"
