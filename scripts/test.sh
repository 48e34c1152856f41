#!/usr/bin/env bash
# README command 2: install what is missing, build, start a throwaway PostgreSQL 15 + PostGIS
# cluster with TLS (scripts/pg-cluster.sh), run the whole test suite with ctest, stop the cluster.
# Exits non-zero when anything fails. The suite runs in two phases: everything but the tests
# labelled slow (fuzzing, the memory soak, clang-tidy), then those. Extra arguments replace both
# with one ctest run of their own (e.g. -L unit, -R router).
#
#   KACHEL_BUILD_DIR   build folder (default build/test)
#   KACHEL_SANITIZE    sanitizers for the test build (default address,undefined; "" for none)
#   KACHEL_SKIP_SLOW   1: leave out the slow phase
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

# LeakSanitizer: on whenever it can run, so a leak in a test binary or in any kachel process a
# test starts fails the run (tests/support/process.hpp reads the children's reports). It needs
# ptrace-like access that some sandboxes refuse; there the run goes on without it, and says so.
if [ -z "${ASAN_OPTIONS:-}" ] && [[ "$sanitize" == *address* ]]; then
  if ASAN_OPTIONS=detect_leaks=1 "$build/tests/test_unit" --gtest_filter=NoSuchTest >/dev/null 2>&1; then
    export ASAN_OPTIONS=detect_leaks=1
    echo "test.sh: AddressSanitizer with LeakSanitizer on"
  else
    export ASAN_OPTIONS=detect_leaks=0
    echo "test.sh: WARNING: LeakSanitizer cannot run on this machine; leaks are not checked" >&2
  fi
fi
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if [ $# -gt 0 ]; then
  ctest --test-dir "$build" --output-on-failure -j2 "$@"
  exit
fi
echo "test.sh: phase 1 of 2: every test but the slow ones"
phase1=0
ctest --test-dir "$build" --output-on-failure -j2 -LE slow || phase1=$?
if [ "${KACHEL_SKIP_SLOW:-0}" = 1 ]; then
  echo "test.sh: phase 2 (slow tests) skipped: KACHEL_SKIP_SLOW=1"
  exit "$phase1"
fi
echo "test.sh: phase 2 of 2: the slow tests (fuzzing, soak, clang-tidy)"
phase2=0
ctest --test-dir "$build" --output-on-failure -j2 -L slow || phase2=$?
[ "$phase1" -eq 0 ] && [ "$phase2" -eq 0 ]
# The browser test leaves a screenshot of the web UI in "$build/artifacts".
