#!/usr/bin/env bash
# Throwaway PostgreSQL 15 + PostGIS cluster with TLS set up as in the PostgreSQL SSL guide.
#
#   pg-cluster.sh start DIR     create (first time) and start the cluster in DIR
#   pg-cluster.sh stop DIR      stop it (fast shutdown)
#   pg-cluster.sh restart DIR   restart, picking up KACHEL_PG_SSL / KACHEL_PG_HBA changes
#   pg-cluster.sh env DIR       print shell exports describing the running cluster
#   pg-cluster.sh standby PRIMARY_DIR DIR
#                               a streaming standby of the running cluster in PRIMARY_DIR, made
#                               with pg_basebackup -R over TLS (role replicator, verify-full), and
#                               started; DIR is then used as any cluster's (stop, start, env)
#   pg-cluster.sh promote DIR   promote the standby in DIR to a primary
#
# DIR gets: ssl/ (CA, server, client and an unrelated CA), data/ (PGDATA), run/ (unix socket),
# port, server.log. The server listens on a free loopback port, TLS on, and pg_hba only admits
# TCP clients over TLS ("hostssl"); the unix socket trusts local users for administration.
# Role "kachel" (password in DIR/password) owns the databases the demo and tests create;
# database kachel_cert admits TLS clients by certificate only (ssl/client.crt, CN=kachel).
#
# Knobs for tests: KACHEL_PG_SSL=on|off, KACHEL_PG_HBA=hostssl|host (default on, hostssl),
# KACHEL_PG_STOP_MODE=fast|immediate for stop (default fast).
set -euo pipefail

cmd=${1:?usage: pg-cluster.sh start|stop|restart|env|standby|promote DIR}
dir=${2:?usage: pg-cluster.sh start|stop|restart|env|standby|promote DIR}
pgbin=${KACHEL_PGBIN:-/usr/lib/postgresql/15/bin}

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  # Below the kernel's ephemeral range: outgoing connections and port-0 listeners never take
  # these, so the port stays free while the cluster restarts (the test suite opens thousands of
  # client connections next to it).
  local p low
  low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  if [ "$low" -le 12000 ]; then low=32768; fi
  for _ in $(seq 1 200); do
    p=$((10000 + RANDOM % (low - 10000)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "pg-cluster: no free port found" >&2; exit 1
}

make_certs() {
  local s="$dir/ssl"
  mkdir -p "$s"
  (
    cd "$s"
    # CA: 3072-bit RSA, self-signed, as in the guide.
    openssl genrsa -out ca.key 3072 2>/dev/null
    openssl req -new -x509 -days 365 -key ca.key -out ca.crt -subj "/CN=kachel test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    # Server: CN=localhost, SAN DNS:localhost, signed by the CA.
    openssl genrsa -out server.key 3072 2>/dev/null
    openssl req -new -key server.key -out server.csr -subj "/CN=localhost"
    printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' > server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -sha256 \
      -extfile server.ext -out server.crt 2>/dev/null
    # Client certificate for role kachel (CN = database user), for client-certificate tests.
    openssl genrsa -out client.key 3072 2>/dev/null
    openssl req -new -key client.key -out client.csr -subj "/CN=kachel"
    printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' > client.ext
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -sha256 \
      -extfile client.ext -out client.crt 2>/dev/null
    # An unrelated CA, to prove that verification really happens.
    openssl req -x509 -newkey rsa:3072 -sha256 -days 365 -nodes -keyout other-ca.key -out other-ca.crt \
      -subj "/CN=kachel unrelated CA" 2>/dev/null
    chmod 600 ./*.key
    chmod 644 ./*.crt
  )
}

write_hba() {
  local kind=${KACHEL_PG_HBA:-hostssl}
  cat > "$dir/data/pg_hba.conf" <<HBA
# written by scripts/pg-cluster.sh (mode: $kind)
local   all  all                 trust
# database kachel_cert: client-certificate authentication (CN = user name)
hostssl kachel_cert  all  127.0.0.1/32   cert
hostssl kachel_cert  all  ::1/128        cert
$kind   all  all  127.0.0.1/32   scram-sha-256
$kind   all  all  ::1/128        scram-sha-256
# streaming replication (pg-cluster.sh standby): role replicator, over TLS only
hostssl replication  replicator  127.0.0.1/32  scram-sha-256
hostssl replication  replicator  ::1/128       scram-sha-256
HBA
  chown_pg "$dir/data/pg_hba.conf"
}

write_ssl_conf() {
  local ssl=${KACHEL_PG_SSL:-on}
  cat > "$dir/data/kachel-ssl.conf" <<CONF
ssl = $ssl
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_ca_file = 'ca.crt'
ssl_min_protocol_version = 'TLSv1.2'
CONF
  chown_pg "$dir/data/kachel-ssl.conf"
}

chown_pg() {
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$@"; fi
}

init_cluster() {
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_pg "$pgbin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  mkdir -p "$dir/run"
  chmod 755 "$dir"
  make_certs
  local pw; pw=$(openssl rand -hex 12)
  echo "$pw" > "$dir/password"; chmod 600 "$dir/password"
  chown_pg "$dir/run"
  mkdir -p "$dir/data"; chown_pg "$dir/data"
  as_pg "$pgbin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  cp "$dir/ssl/server.crt" "$dir/ssl/server.key" "$dir/ssl/ca.crt" "$dir/data/"
  chown_pg "$dir/data/server.crt" "$dir/data/server.key" "$dir/data/ca.crt"
  chmod 600 "$dir/data/server.key"
  free_port > "$dir/port"
  cat >> "$dir/data/postgresql.conf" <<CONF
# kachel throwaway cluster
listen_addresses = 'localhost'
port = $(cat "$dir/port")
unix_socket_directories = '$dir/run'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
# user@database on every session's lines: tests read which statements kachel ran
log_line_prefix = '%m [%p] %q%u@%d '
include = 'kachel-ssl.conf'
CONF
  write_ssl_conf
  write_hba
  start_server
  as_pg "$pgbin/psql" -h "$dir/run" -p "$(cat "$dir/port")" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
    -c "CREATE ROLE kachel LOGIN PASSWORD '$pw'" -c "CREATE DATABASE kachel_cert OWNER kachel" >/dev/null
  as_pg "$pgbin/psql" -h "$dir/run" -p "$(cat "$dir/port")" -U postgres -d kachel_cert -v ON_ERROR_STOP=1 -q \
    -c "CREATE EXTENSION postgis" >/dev/null
  touch "$dir/initialised"
}

start_server() {
  # The port may have been taken since the cluster was made: pick another one then.
  local port; port=$(cat "$dir/port")
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    port=$(free_port); echo "$port" > "$dir/port"
    sed -i "s/^port = .*/port = $port/" "$dir/data/postgresql.conf"
  fi
  touch "$dir/server.log"; chown_pg "$dir/server.log"
  as_pg "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
    || { tail -20 "$dir/server.log" >&2; exit 1; }
}

running() {
  [ -f "$dir/data/postmaster.pid" ] && as_pg "$pgbin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

make_standby() {
  local primary=${dir:?} standby=${3:?usage: pg-cluster.sh standby PRIMARY_DIR DIR}
  local pport; pport=$(cat "$primary/port")
  local pw
  if [ -f "$primary/replication-password" ]; then
    pw=$(cat "$primary/replication-password")
  else
    pw=$(openssl rand -hex 12)
    echo "$pw" > "$primary/replication-password"; chmod 600 "$primary/replication-password"
    as_pg "$pgbin/psql" -h "$primary/run" -p "$pport" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
      -c "CREATE ROLE replicator REPLICATION LOGIN PASSWORD '$pw'" >/dev/null
  fi
  # A cluster made before the replication lines existed gets them.
  if ! grep -q '^hostssl replication' "$primary/data/pg_hba.conf"; then
    dir=$primary write_hba
    as_pg "$pgbin/pg_ctl" -D "$primary/data" reload >/dev/null
  fi
  if [ -f "$standby/data/postmaster.pid" ]; then
    as_pg "$pgbin/pg_ctl" -D "$standby/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$standby"
  mkdir -p "$standby/run"
  chmod 755 "$standby"
  cp -r "$primary/ssl" "$standby/ssl"
  cp "$primary/password" "$standby/password"
  chown_pg "$standby/run"
  # The replication password reaches libpq through a password file of the standby's own, which
  # primary_conninfo names (pg_basebackup -R writes the connection's settings there).
  printf 'localhost:%s:replication:replicator:%s\n' "$pport" "$pw" > "$standby/pgpass"
  chmod 600 "$standby/pgpass"; chown_pg "$standby/pgpass"
  mkdir -p "$standby/data"; chmod 700 "$standby/data"; chown_pg "$standby/data"
  as_pg "$pgbin/pg_basebackup" -D "$standby/data" -R -X stream -c fast --no-sync \
    -d "host=localhost port=$pport user=replicator dbname=replication sslmode=verify-full sslrootcert=$primary/ssl/ca.crt passfile=$standby/pgpass application_name=kachel_standby" \
    >"$standby/basebackup.log" 2>&1 || { cat "$standby/basebackup.log" >&2; exit 1; }
  dir=$standby
  free_port > "$dir/port"
  cat >> "$dir/data/postgresql.conf" <<CONF
# kachel throwaway standby of $primary
port = $(cat "$dir/port")
unix_socket_directories = '$dir/run'
hot_standby_feedback = on
CONF
  echo "$primary" > "$dir/primary"
  touch "$dir/initialised"
  start_server
}

case "$cmd" in
  start)
    if [ -f "$dir/initialised" ]; then
      running || start_server
    else
      init_cluster
    fi
    ;;
  stop)
    if running; then as_pg "$pgbin/pg_ctl" -D "$dir/data" -m "${KACHEL_PG_STOP_MODE:-fast}" -w stop >/dev/null; fi
    ;;
  restart)
    write_ssl_conf
    write_hba
    if running; then as_pg "$pgbin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null; fi
    start_server
    ;;
  standby)
    make_standby "$@"
    ;;
  promote)
    as_pg "$pgbin/pg_ctl" -D "$dir/data" -w -t 60 promote >/dev/null
    ;;
  env)
    port=$(cat "$dir/port")
    echo "export KACHEL_PG_DIR='$dir'"
    echo "export KACHEL_PG_PORT='$port'"
    echo "export KACHEL_PG_SOCKET='$dir/run'"
    echo "export KACHEL_PG_CA='$dir/ssl/ca.crt'"
    echo "export KACHEL_PG_PASSWORD='$(cat "$dir/password")'"
    ;;
  *)
    echo "usage: pg-cluster.sh start|stop|restart|env|standby|promote DIR" >&2; exit 2 ;;
esac
