#!/usr/bin/env bash
# test-c.sh: builds and tests the C engine (native/) three ways:
#   1. build-c/     normal build, -Wall -Wextra -Werror, ctest
#   2. build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer, ctest
#   3. build-fuzz/  libFuzzer target (clang), run for BEUSS_FUZZ_SECONDS
#                   seconds (default 60; 0 skips) on native/fuzz/corpus/
# Prints one summary line per stage and exits non-zero if any stage failed.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
JOBS="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
FUZZ_SECONDS="${BEUSS_FUZZ_SECONDS:-60}"
SUMMARY=()
FAILED=0

record() { # record NAME RC DETAIL
  if [ "$2" = 0 ]; then SUMMARY+=("test-c: $1: PASS $3"); else SUMMARY+=("test-c: $1: FAIL (exit $2) $3"); FAILED=1; fi
}

stage_ctest() { # stage_ctest NAME BUILD_DIR CMAKE_ARGS...
  local name="$1" dir="$2"; shift 2
  echo "== test-c: $name: configure and build in $dir"
  cmake -S . -B "$dir" -DBEUSS_TESTS=ON -DBEUSS_WERROR=ON "$@" >"$dir/configure.log" 2>&1 \
    || { cat "$dir/configure.log"; record "$name" 1 "(configure failed)"; return; }
  cmake --build "$dir" --target test_engine test_internal test_roadmap bench_engine -j "$JOBS" \
    || { record "$name" 1 "(build failed)"; return; }
  echo "== test-c: $name: ctest"
  local out rc
  out="$(ctest --test-dir "$dir/native" --output-on-failure 2>&1)"; rc=$?
  echo "$out"
  record "$name" "$rc" "($(echo "$out" | grep -E 'tests passed|tests failed' | tail -1))"
}

mkdir -p build-c build-asan
stage_ctest "normal (-Werror)" build-c -DCMAKE_BUILD_TYPE=Release
stage_ctest "asan+ubsan" build-asan -DCMAKE_BUILD_TYPE=Debug -DBEUSS_SANITIZE=ON

if [ "$FUZZ_SECONDS" = 0 ]; then
  SUMMARY+=("test-c: fuzz: SKIPPED (BEUSS_FUZZ_SECONDS=0)")
elif ! command -v clang >/dev/null 2>&1; then
  record "fuzz" 1 "(clang not found: libFuzzer needs clang)"
else
  echo "== test-c: fuzz: build with clang in build-fuzz"
  mkdir -p build-fuzz
  if CC=clang cmake -S . -B build-fuzz -DBEUSS_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >build-fuzz/configure.log 2>&1 \
     && cmake --build build-fuzz --target fuzz_engine -j "$JOBS"; then
    # New inputs the fuzzer finds go to a scratch corpus; the committed seeds
    # stay as they are.
    mkdir -p native/fuzz/corpus-run
    echo "== test-c: fuzz: running ${FUZZ_SECONDS}s"
    log="build-fuzz/fuzz.log"
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      ./build-fuzz/native/fuzz_engine -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
      -artifact_prefix=build-fuzz/ -max_len=4096 native/fuzz/corpus-run native/fuzz/corpus >"$log" 2>&1
    rc=$?
    tail -n 25 "$log"
    execs="$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')"
    record "fuzz" "$rc" "(${FUZZ_SECONDS}s, ${execs:-?} executions; log in $log)"
  else
    cat build-fuzz/configure.log
    record "fuzz" 1 "(build failed)"
  fi
fi

echo
for line in "${SUMMARY[@]}"; do echo "$line"; done
exit "$FAILED"
