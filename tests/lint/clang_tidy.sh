#!/usr/bin/env bash
# clang-tidy with the project's .clang-tidy (identifier naming included) over every translation
# unit of src/, tools/ and bench/. Any finding fails the test and is printed once.
#
#   tests/lint/clang_tidy.sh SOURCE_DIR WORK_DIR     the whole project
#   tests/lint/clang_tidy.sh --file FILE.cpp         one file, without a build (the self-test)
#
# Speed: the project is configured in WORK_DIR as a unity build (CMake writes files that include
# batches of .cpp files), so the Boost, libpq and standard headers are parsed and matched once per
# batch instead of once per file: about 3 minutes of one core instead of 45. Two batches run at a
# time. bugprone-suspicious-include is off here only because the batches include .cpp files.
set -euo pipefail

tidy=${CLANG_TIDY:-clang-tidy}
command -v "$tidy" >/dev/null || {
  echo "clang-tidy not found: install it with scripts/install-deps.sh --with-test-tools" >&2
  exit 2
}
here=$(cd "$(dirname "$0")" && pwd)
config=$here/../../.clang-tidy
args=(--config-file="$config" --quiet --extra-arg=-Wno-unknown-warning-option
  --checks=-bugprone-suspicious-include)

if [[ ${1:-} == --file ]]; then
  exec "$tidy" "${args[@]}" "$2" -- -std=c++20
fi

source_dir=${1:?usage: clang_tidy.sh SOURCE_DIR WORK_DIR}
work_dir=${2:?usage: clang_tidy.sh SOURCE_DIR WORK_DIR}
cmake -S "$source_dir" -B "$work_dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DBUILD_TESTING=OFF \
  -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=20 -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
  >"$work_dir.configure.log" 2>&1 || {
  cat "$work_dir.configure.log" >&2
  exit 2
}
mapfile -t units < <(find "$work_dir" -path '*/Unity/unity_*_cxx.cxx' | sort)
if ((${#units[@]} == 0)); then
  echo "no unity files under $work_dir: CMake did not write any" >&2
  exit 2
fi
echo "clang-tidy $("$tidy" --version | sed -n 's/.*version \([0-9.]*\).*/\1/p' | head -1) on ${#units[@]} batches"
output=$(printf '%s\n' "${units[@]}" |
  xargs -P2 -n1 "$tidy" -p "$work_dir" "${args[@]}" 2>&1) && status=0 || status=$?
findings=$(grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error):' <<<"$output" | sort -u || true)
if [[ -n $findings ]]; then
  echo "$findings"
  echo "$(wc -l <<<"$findings") findings"
  exit 1
fi
if ((status != 0)); then
  echo "$output"
  echo "clang-tidy failed without a finding (exit $status)"
  exit 1
fi
echo "no findings"
