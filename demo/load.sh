#!/usr/bin/env bash
# Loads the demo data into database kachel_demo of the cluster described by KACHEL_PG_* (see
# scripts/pg-cluster.sh env). Safe to rerun: the database is dropped and created again.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
export PGOPTIONS="-c client_min_messages=warning"
admin=(psql -h "$KACHEL_PG_SOCKET" -p "$KACHEL_PG_PORT" -U postgres -v ON_ERROR_STOP=1 -q)
"${admin[@]}" -d postgres -c "DROP DATABASE IF EXISTS kachel_demo WITH (FORCE)" -c "CREATE DATABASE kachel_demo OWNER kachel"
"${admin[@]}" -d kachel_demo -c "CREATE EXTENSION postgis"
{
  cat "$here/schema.sql"
  echo "COPY countries_raw FROM STDIN (FORMAT csv);"
  node "$here/to-csv.js" countries
  echo '\.'
  echo "COPY cities_raw FROM STDIN (FORMAT csv);"
  node "$here/to-csv.js" cities
  echo '\.'
  cat "$here/finish.sql"
} | psql -h "$KACHEL_PG_SOCKET" -p "$KACHEL_PG_PORT" -U kachel -d kachel_demo -v ON_ERROR_STOP=1 -q
