#!/usr/bin/env bash
# Installs the Debian packages kachel needs to build, test and run its demo.
# Idempotent: packages already present are not downloaded again.
#   --with-test-tools   also what the test suite uses besides the build: Debian's chromium (the web
#                       UI's browser test) and prometheus (promtool checks /_/metrics)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache git ca-certificates openssl curl clang-format
  postgresql-15 postgresql-client-15 postgresql-15-postgis-3 libpq-dev
  libboost1.81-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libcli11-dev libyaml-cpp-dev libssl-dev
  zlib1g-dev libbrotli-dev libzstd-dev libxxhash-dev
  libprotozero-dev libgtest-dev nodejs npm
)
if [ "${1:-}" = "--with-test-tools" ]; then
  packages+=(chromium prometheus)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# nodejs from nodesource ships npm itself; don't ask apt for Debian's npm then.
if command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/npm/}")
fi
cleaned=()
for p in "${missing[@]}"; do [ -n "$p" ] && cleaned+=("$p"); done
if command -v node >/dev/null 2>&1; then
  tmp=(); for p in "${cleaned[@]}"; do [ "$p" != nodejs ] && tmp+=("$p"); done; cleaned=("${tmp[@]+"${tmp[@]}"}")
fi

if [ "${#cleaned[@]}" -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "install-deps: missing packages (${cleaned[*]}) and not root; install them or run as root" >&2
    exit 1
  fi
fi
echo "install-deps: installing ${cleaned[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${cleaned[@]}" >/dev/null
echo "install-deps: done"
