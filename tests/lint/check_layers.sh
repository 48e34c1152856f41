#!/usr/bin/env bash
# The layer rule of docs/architecture.md: a folder of src/ may include its own headers and those
# of folders in lower layers, never a folder beside it or above it. Prints every breach and fails.
#
#   tests/lint/check_layers.sh SRC_DIR
set -euo pipefail
src=${1:?usage: check_layers.sh SRC_DIR}

# Lower numbers are lower layers. Folders in one layer do not include each other.
layer() {
  case $1 in
    core) echo 0 ;;
    tiles | pg | remote) echo 1 ;;
    postgis | mbtiles | pmtiles) echo 2 ;;
    http) echo 3 ;;
    config) echo 4 ;;
    app) echo 5 ;;
    *) echo "" ;;
  esac
}

status=0
checked=0
for dir in "$src"/*/; do
  from=$(basename "$dir")
  from_layer=$(layer "$from")
  if [ -z "$from_layer" ]; then
    echo "src/$from is in no layer: add it to tests/lint/check_layers.sh and docs/architecture.md"
    status=1
    continue
  fi
  while IFS= read -r hit; do
    file=${hit%%:*}
    rest=${hit#*:}
    line=${rest%%:*}
    to=$(sed -E 's/^#include "([a-z_]+)\/.*/\1/' <<<"${rest#*:}")
    to_layer=$(layer "$to")
    checked=$((checked + 1))
    if [ "$to" != "$from" ] && { [ -z "$to_layer" ] || [ "$to_layer" -ge "$from_layer" ]; }; then
      echo "${file#"$src"/}:$line: src/$from (layer $from_layer) includes src/$to (layer ${to_layer:-none})"
      status=1
    fi
  done < <(grep -HnE '^#include "[a-z_]+/' "$dir" -r --include='*.hpp' --include='*.cpp' || true)
done
if [ "$checked" -eq 0 ]; then
  echo "no includes found under $src: wrong folder?"
  exit 1
fi
[ "$status" -eq 0 ] && echo "layers: $checked includes checked, none points up"
exit "$status"
