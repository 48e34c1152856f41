#!/usr/bin/env bash
# README command 1: install what is missing, build kachel (Release), start a throwaway
# PostgreSQL 15 + PostGIS cluster with TLS as in the SSL guide, load world countries and
# populated places, and serve them at http://localhost:3000 over sslmode=verify-full.
# Ctrl+C stops kachel and the cluster. Running it again reuses the cluster and its data.
#
#   KACHEL_DEMO_DIR    cluster folder (default ${TMPDIR:-/tmp}/kachel-demo)
#   KACHEL_DEMO_PORT   HTTP port (default 3000)
#   KACHEL_DEMO_FRESH  set to 1 to recreate the cluster and reload the data
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
state=${KACHEL_DEMO_DIR:-${TMPDIR:-/tmp}/kachel-demo}
port=${KACHEL_DEMO_PORT:-3000}
build=$root/build/release

"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j2

if [ "${KACHEL_DEMO_FRESH:-0}" = 1 ]; then
  "$root/scripts/pg-cluster.sh" stop "$state" 2>/dev/null || true
  rm -rf "$state"
fi
"$root/scripts/pg-cluster.sh" start "$state"
trap '"$root/scripts/pg-cluster.sh" stop "$state"; echo "demo: cluster stopped"' EXIT
trap 'exit 130' INT TERM
eval "$("$root/scripts/pg-cluster.sh" env "$state")"

# Data from before the populations were added is loaded again.
if [ -f "$state/demo-loaded" ] && ! psql -X -At -h "$KACHEL_PG_SOCKET" -p "$KACHEL_PG_PORT" -U kachel -d kachel_demo \
    -c "SELECT population FROM cities LIMIT 0" >/dev/null 2>&1; then
  rm -f "$state/demo-loaded" "$state/demo-triggers"
fi
if [ ! -f "$state/demo-loaded" ]; then
  echo "demo: loading world countries and populated places (about 15 s)..."
  "$root/demo/load.sh"
  touch "$state/demo-loaded"
fi

# The CA through PGSSLROOTCERT and the password through a passfile: nothing secret on the
# command line, exactly as a production deployment should do it.
export PGSSLROOTCERT="$KACHEL_PG_CA"
printf 'localhost:%s:kachel_demo:kachel:%s\n' "$KACHEL_PG_PORT" "$KACHEL_PG_PASSWORD" > "$state/pgpass"
chmod 600 "$state/pgpass"
export PGPASSFILE="$state/pgpass"

url="postgresql://kachel@localhost:$KACHEL_PG_PORT/kachel_demo?sslmode=verify-full"
# Live data: the change triggers kachel prints, run by the cluster's superuser (which adds the
# event triggers for schema changes), so that an edit in psql shows on the open map.
if [ ! -f "$state/demo-triggers" ]; then
  echo "demo: installing the change triggers that kachel --print-change-triggers prints..."
  "$build/src/kachel" --notify-changes --print-change-triggers "$url" 2>/dev/null > "$state/triggers.sql"
  PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -h "$KACHEL_PG_SOCKET" \
    -p "$KACHEL_PG_PORT" -U postgres -d kachel_demo -f "$state/triggers.sql"
  touch "$state/demo-triggers"
fi

base="http://localhost:$port"
cat <<TXT

kachel demo: PostGIS cluster on localhost:$KACHEL_PG_PORT (TLS, hostssl only), kachel on $base
  map        $base/                      (the web UI: pick a source, or $base/?source=countries,cities)
  catalog    $base/catalog
  TileJSON   $base/countries
  tile       $base/countries/0/0/0
  composite  $base/countries,cities/6/33/22
  live data  open $base/?source=countries,cities, then in another shell:
             psql -h $KACHEL_PG_SOCKET -p $KACHEL_PG_PORT -U kachel -d kachel_demo \\
               -c "UPDATE cities SET geom = ST_Translate(geom, 1, 0) WHERE name = 'Paris'"
             and the map redraws the tiles around Paris, without a reload
Press Ctrl+C to stop kachel and the cluster.

TXT
# The sources and their tile budgets are in demo/kachel.yaml; the connection comes from here.
export KACHEL_DEMO_URL="$url"
"$build/src/kachel" -l "localhost:$port" --config "$root/demo/kachel.yaml"
