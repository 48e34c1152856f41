#!/usr/bin/env bash
# README command 2: install what is missing, build, start a throwaway PostgreSQL 15 + PostGIS
# cluster with TLS (scripts/pg-cluster.sh), run the whole test suite with ctest, stop the cluster.
# Exits non-zero when anything fails. Extra arguments go to ctest (e.g. -L unit, -R router).
#
#   KACHEL_BUILD_DIR   build folder (default build/test)
#   KACHEL_SANITIZE    sanitizers for the test build (default address,undefined; "" for none)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${KACHEL_BUILD_DIR:-$root/build/test}
sanitize=${KACHEL_SANITIZE-address,undefined}

"$root/scripts/install-deps.sh" --with-test-tools

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DBUILD_TESTING=ON -DSANITIZE="$sanitize" >/dev/null
cmake --build "$build" -j2

cluster=$(mktemp -d "${TMPDIR:-/tmp}/kachel-test-cluster.XXXXXX")
cleanup() {
  "$root/scripts/pg-cluster.sh" stop "$cluster" || true
  rm -rf "$cluster"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "test.sh: starting a throwaway TLS cluster in $cluster"
"$root/scripts/pg-cluster.sh" start "$cluster"
eval "$("$root/scripts/pg-cluster.sh" env "$cluster")"

# LeakSanitizer needs ptrace-like access that some sandboxes refuse; leaks are not what these
# runs look for, memory errors and undefined behaviour are.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

ctest --test-dir "$build" --output-on-failure -j2 "$@"
# The browser test leaves a screenshot of the web UI in "$build/artifacts".
