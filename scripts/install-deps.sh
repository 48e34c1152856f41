#!/usr/bin/env bash
# Installs the Debian packages kachel needs to build, test and run its demo.
# Idempotent: packages already present are not downloaded again.
#   --with-test-tools   also what the test suite uses besides the build: Debian's chromium (the web
#                       UI's browser test), prometheus (promtool checks /_/metrics), and clang
#                       with libclang-rt-14-dev (libFuzzer, for the fuzz targets), clang-tidy (the
#                       lint test), pgbouncer, sqlite3 (writes the MBTiles archives the tests serve),
#                       nginx-light (serves PMTiles archives over HTTPS to the remote-archive tests),
#                       zstd (compresses the tiles and directories of a test PMTiles archive)
#   --with-bench-tools  also what bench/run uses: wrk (the HTTP load), nginx-light (the static-file
#                       server it compares against), jq (reads wrk's figures) and sqlite3 (writes
#                       the MBTiles archives of the archive section), gdal-bin (ogr2ogr, the
#                       reference of the kachel-cp section); pgbench comes with
#                       postgresql-15
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache git ca-certificates openssl curl clang-format
  postgresql-15 postgresql-client-15 postgresql-15-postgis-3 libpq-dev
  libboost1.81-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libcli11-dev libyaml-cpp-dev libssl-dev
  zlib1g-dev libdeflate-dev libbrotli-dev libzstd-dev libxxhash-dev libsqlite3-dev
  libprotozero-dev libgtest-dev
)
# Node.js for the web UI build and its tests: Debian's, unless a Node.js (which brings its own
# npm, as the nodesource package does) is already installed.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi
for option in "$@"; do
  case "$option" in
    --with-test-tools) packages+=(chromium prometheus clang clang-tidy libclang-rt-14-dev pgbouncer sqlite3 nginx-light zstd) ;;
    --with-bench-tools) packages+=(wrk nginx-light jq sqlite3 gdal-bin) ;;
    *) echo "install-deps: unknown option $option (--with-test-tools, --with-bench-tools)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "install-deps: missing packages (${missing[*]}) and not root; install them or run as root" >&2
    exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
