#!/usr/bin/env bash
# Runs the Python client's tests (unittest, standard library only) against the
# real beuss-server of this repository. Builds nothing: run `npm run build` in
# the repository root first. Exits non-zero if any test fails.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
if [ ! -f "$ROOT/dist/cjs/server/main.js" ]; then
  echo "run-tests.sh: $ROOT/dist is missing: run 'npm run build' in $ROOT first" >&2
  exit 1
fi
# The servers the tests start listen on 127.0.0.1; a user's settings must not leak in.
unset BHOST BPORT BMAXMESSAGESIZE
cd "$HERE"
"$PYTHON" --version
exec "$PYTHON" -m unittest discover -v "$@"
