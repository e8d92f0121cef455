#!/usr/bin/env bash
# Local RabbitMQ 3.10 (with the management plugin) and PostgreSQL 15 for tests and the demo,
# bound to 127.0.0.1, with their data under $TSYNC_LOCAL_DIR (default: .local-services in the
# repository). Installs the Debian packages it needs when they are missing.
#
#   deploy/local/services.sh install|start|stop|status|env
#
# Ports: TSYNC_PG_PORT (5432), TSYNC_AMQP_PORT (5672), TSYNC_AMQPS_PORT (5671, TLS),
# TSYNC_MANAGEMENT_PORT (15672). Both servers also speak TLS with a throwaway CA made here
# (for `localhost`), so that amqps:// and sslmode=verify-full are tested for real.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
dir=${TSYNC_LOCAL_DIR:-$repo/.local-services}
pg_port=${TSYNC_PG_PORT:-5432}
amqp_port=${TSYNC_AMQP_PORT:-5672}
mgmt_port=${TSYNC_MANAGEMENT_PORT:-15672}
amqps_port=${TSYNC_AMQPS_PORT:-5671}
tls=$dir/tls
pg_bin=/usr/lib/postgresql/15/bin
rabbit_bin=/usr/lib/rabbitmq/bin

export RABBITMQ_NODENAME=tsync@localhost
export RABBITMQ_MNESIA_BASE=$dir/rabbitmq/mnesia
export RABBITMQ_LOG_BASE=$dir/rabbitmq/log
export RABBITMQ_PID_FILE=$dir/rabbitmq/rabbitmq.pid
export RABBITMQ_ENABLED_PLUGINS_FILE=$dir/rabbitmq/enabled_plugins
export RABBITMQ_CONFIG_FILE=$dir/rabbitmq/rabbitmq
export RABBITMQ_DIST_PORT=$((amqp_port + 20000))
export ERL_EPMD_ADDRESS=127.0.0.1

say() { echo "services: $*" >&2; }

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_packages() {
  local wanted=(rabbitmq-server postgresql-15 librabbitmq-dev libpq-dev libcurl4-openssl-dev pkg-config openssl curl)
  local missing=()
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  # policy-rc.d keeps the Debian services from starting: we run our own instances.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# A CA and one server certificate for localhost, made once per data directory.
make_certificates() {
  [ -f "$tls/server.pem" ] && return 0
  mkdir -p "$tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=tearsheet-sync test CA" \
    -keyout "$tls/ca.key" -out "$tls/ca.pem" >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$tls/server.key" -out "$tls/server.csr" >/dev/null 2>&1
  printf 'subjectAltName=DNS:localhost\n' > "$tls/san.ext"
  openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 3650 \
    -extfile "$tls/san.ext" -out "$tls/server.pem" >/dev/null 2>&1
  # PostgreSQL insists on a private key only its user can read.
  cp "$tls/server.key" "$tls/postgres.key"
  chmod 600 "$tls/postgres.key"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$tls/postgres.key"
  chmod 755 "$tls"; chmod 644 "$tls/ca.pem" "$tls/server.pem"
}

pg_running() { as_postgres "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; }

start_postgres() {
  if pg_running; then say "PostgreSQL already answers on 127.0.0.1:$pg_port"; return 0; fi
  local data=$dir/postgres
  mkdir -p "$data"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$data"
  chmod 700 "$data"
  if [ ! -f "$data/PG_VERSION" ]; then
    as_postgres "$pg_bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  as_postgres "$pg_bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start -o \
    "-c listen_addresses=127.0.0.1 -c port=$pg_port -c unix_socket_directories='' -c max_connections=200 -c fsync=on -c ssl=on -c ssl_cert_file=$tls/server.pem -c ssl_key_file=$tls/postgres.key" >/dev/null
  say "PostgreSQL 15 on 127.0.0.1:$pg_port (data $data)"
}

stop_postgres() {
  local data=$dir/postgres
  if [ -f "$data/postmaster.pid" ]; then
    as_postgres "$pg_bin/pg_ctl" -D "$data" -w -m fast stop >/dev/null || true
    say "PostgreSQL stopped"
  fi
}

rabbitmqctl() { "$rabbit_bin/rabbitmqctl" "$@"; }

start_rabbitmq() {
  if [ -f "$RABBITMQ_PID_FILE" ] && kill -0 "$(cat "$RABBITMQ_PID_FILE")" 2>/dev/null; then
    say "RabbitMQ already running (pid $(cat "$RABBITMQ_PID_FILE"))"; return 0
  fi
  mkdir -p "$RABBITMQ_MNESIA_BASE" "$RABBITMQ_LOG_BASE"
  echo "[rabbitmq_management]." > "$RABBITMQ_ENABLED_PLUGINS_FILE"
  cat > "$RABBITMQ_CONFIG_FILE.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$amqp_port
listeners.ssl.default = 127.0.0.1:$amqps_port
ssl_options.cacertfile = $tls/ca.pem
ssl_options.certfile = $tls/server.pem
ssl_options.keyfile = $tls/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
management.tcp.ip = 127.0.0.1
management.tcp.port = $mgmt_port
collect_statistics_interval = 1000
log.console = false
log.file.level = warning
CONF
  rm -f "$RABBITMQ_PID_FILE"
  nohup "$rabbit_bin/rabbitmq-server" > "$RABBITMQ_LOG_BASE/startup.log" 2>&1 &
  # rabbitmq-server writes the pid file once the VM is up; wait for it, then for the app.
  for _ in $(seq 1 60); do [ -s "$RABBITMQ_PID_FILE" ] && break; sleep 0.5; done
  if ! rabbitmqctl wait --timeout 120 "$RABBITMQ_PID_FILE" >/dev/null 2>&1 ||
     ! rabbitmqctl await_startup --timeout 120 >/dev/null 2>&1; then
    say "RabbitMQ did not start; see $RABBITMQ_LOG_BASE"; tail -n 20 "$RABBITMQ_LOG_BASE/startup.log" >&2; exit 1
  fi
  # The management listener comes up a moment after the broker itself.
  for _ in $(seq 1 60); do
    curl -fsS -u guest:guest "http://127.0.0.1:$mgmt_port/api/overview" >/dev/null 2>&1 && break; sleep 0.5
  done
  say "RabbitMQ 3.10 on 127.0.0.1:$amqp_port, management on 127.0.0.1:$mgmt_port (data $dir/rabbitmq)"
}

stop_rabbitmq() {
  if [ -f "$RABBITMQ_PID_FILE" ] && kill -0 "$(cat "$RABBITMQ_PID_FILE")" 2>/dev/null; then
    rabbitmqctl stop "$RABBITMQ_PID_FILE" >/dev/null 2>&1 || kill "$(cat "$RABBITMQ_PID_FILE")" || true
    say "RabbitMQ stopped"
  fi
  rm -f "$RABBITMQ_PID_FILE"
}

print_env() {
  cat <<ENV
export TSYNC_AMQP_URL=amqp://guest:guest@127.0.0.1:$amqp_port/%2F
export TSYNC_MANAGEMENT_URL=http://guest:guest@127.0.0.1:$mgmt_port
export TSYNC_DATABASE_URL=postgresql://postgres@127.0.0.1:$pg_port/postgres
export TSYNC_TEST_TLS_CA=$tls/ca.pem
export TSYNC_TEST_AMQPS_PORT=$amqps_port
ENV
}

case "${1:-}" in
  install) install_packages ;;
  start) install_packages; make_certificates; start_postgres; start_rabbitmq ;;
  stop) stop_rabbitmq; stop_postgres ;;
  status)
    pg_running && say "PostgreSQL up on $pg_port" || say "PostgreSQL down"
    rabbitmqctl status >/dev/null 2>&1 && say "RabbitMQ up on $amqp_port" || say "RabbitMQ down" ;;
  env) print_env ;;
  *) echo "usage: $0 install|start|stop|status|env" >&2; exit 2 ;;
esac
