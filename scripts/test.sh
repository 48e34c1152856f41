#!/usr/bin/env bash
# README command 2: install what is missing, build, start a throwaway PostgreSQL 15 + PostGIS
# cluster with TLS (scripts/pg-cluster.sh), run the whole test suite with ctest, stop the cluster.
# Exits non-zero when anything fails. The suite runs in three phases: everything but the tests
# labelled slow; the slow ones (fuzzing, the memory soak); then a ThreadSanitizer build of the
# PostgreSQL and end-to-end tests. Extra arguments replace them with one ctest run of their own
# (e.g. -L unit, -R router).
#
#   KACHEL_BUILD_DIR   build folder (default build/test)
#   KACHEL_SANITIZE    sanitizers for the test build (default address,undefined; "" for none)
#   KACHEL_SKIP_SLOW   1: leave out phase 2 (the slow tests)
#   KACHEL_SKIP_TSAN   1: leave out phase 3 (ThreadSanitizer)
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
echo "test.sh: phase 1 of 3: every test but the slow ones"
failed=0
ctest --test-dir "$build" --output-on-failure -j2 -LE slow || failed=1
if [ "${KACHEL_SKIP_SLOW:-0}" = 1 ]; then
  echo "test.sh: phase 2 of 3 skipped (KACHEL_SKIP_SLOW=1)"
else
  echo "test.sh: phase 2 of 3: the slow tests (fuzzing, soak)"
  ctest --test-dir "$build" --output-on-failure -j2 -L slow || failed=1
fi
if [ "${KACHEL_SKIP_TSAN:-0}" = 1 ]; then
  echo "test.sh: phase 3 of 3 skipped (KACHEL_SKIP_TSAN=1)"
else
  # The database and end-to-end tests (and the read replicas' threads) again, with kachel and the tests built with
  # ThreadSanitizer (optimised: it runs them several times slower). A report fails the test:
  # tests/support/process.hpp reads the kachel processes' output, halt_on_error stops the tests'.
  echo "test.sh: phase 3 of 3: ThreadSanitizer build of the PostgreSQL and end-to-end tests"
  tsan_build=${KACHEL_TSAN_BUILD_DIR:-$root/build/tsan}
  cmake -S "$root" -B "$tsan_build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=ON \
    -DSANITIZE=thread >/dev/null
  cmake --build "$tsan_build" -j2 --target kachel test_pg test_e2e test_replicas
  ASAN_OPTIONS='' UBSAN_OPTIONS='' TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" \
    ctest --test-dir "$tsan_build" --output-on-failure -j2 -R '^(test_(pg|e2e)[.]|replicas$)' || failed=1
fi
[ "$failed" -eq 0 ]
# The browser test leaves a screenshot of the web UI in "$build/artifacts".
