#!/usr/bin/env bash
# Local RabbitMQ 3.10 (with the management and prometheus plugins) and PostgreSQL 15 for tests
# and the demo, bound to 127.0.0.1, with their data under $TSYNC_LOCAL_DIR (default:
# .local-services in the repository). Installs the Debian packages it needs when they are
# missing, with a temporary policy-rc.d so that Debian does not start its own rabbitmq-server and
# postgresql services.
#
#   deploy/local/services.sh install [PACKAGE...]|start|stop|status|env
#
# Ports, of their own beside the usual ones (a distribution's or a developer's servers on 5432,
# 5672, 5671, 15672, 15692, 25672 may run too): TSYNC_PG_PORT (5442), TSYNC_AMQP_PORT (5682;
# RabbitMQ's distribution port is 20000 above it, 25682, and its node name tsync-5682@localhost),
# TSYNC_AMQPS_PORT (5681, TLS), TSYNC_MANAGEMENT_PORT (15682), TSYNC_RABBITMQ_PROMETHEUS_PORT
# (RabbitMQ's own metrics, /metrics of its rabbitmq_prometheus plugin: TSYNC_MANAGEMENT_PORT + 1,
# 15683, off the plugin's default 15692 and cluster.sh's 15701-15703). `start` refuses, naming
# the port and its variable, when another server already listens on one of them. Both servers
# also speak TLS with a throwaway CA made here (for `localhost`), so that amqps:// and
# sslmode=verify-full are tested for real.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
dir=${TSYNC_LOCAL_DIR:-$repo/.local-services}
pg_port=${TSYNC_PG_PORT:-5442}
amqp_port=${TSYNC_AMQP_PORT:-5682}
mgmt_port=${TSYNC_MANAGEMENT_PORT:-15682}
prometheus_port=${TSYNC_RABBITMQ_PROMETHEUS_PORT:-$((mgmt_port + 1))}
amqps_port=${TSYNC_AMQPS_PORT:-5681}
tls=$dir/tls
pg_data=$dir/postgres
pg_bin=/usr/lib/postgresql/15/bin
rabbit_bin=/usr/lib/rabbitmq/bin

# A node name per port, so that instances from other directories share epmd without a clash.
export RABBITMQ_NODENAME=tsync-$amqp_port@localhost
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

# Debian's postinst scripts start the rabbitmq-server and postgresql services (on 5672 and 5432)
# unless a policy-rc.d forbids it: one is in place for the install only, unless one is already.
policy_rc_d=/usr/sbin/policy-rc.d

# The packages the services and the build need, and any named after `install` (e.g. prometheus,
# for promtool), each installed when missing.
install_packages() {
  local wanted=(rabbitmq-server postgresql-15 librabbitmq-dev libpq-dev libcurl4-openssl-dev pkg-config openssl curl "$@")
  local missing=()
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  local own_policy="" status=0
  if [ ! -e "$policy_rc_d" ]; then
    own_policy=yes
    trap "$sudo rm -f $policy_rc_d" EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    printf '#!/bin/sh\n# Written by deploy/local/services.sh for its apt-get install: no service starts.\nexit 101\n' |
      $sudo tee "$policy_rc_d" >/dev/null
    $sudo chmod 755 "$policy_rc_d"
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null || status=$?
  if [ -n "$own_policy" ]; then
    $sudo rm -f "$policy_rc_d"
    trap - EXIT INT TERM
  fi
  return $status
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

# Whether process $1 exists, is not a zombie (PID 1 in some containers reaps nothing it inherits)
# and is the command $2.
running() {
  local stat comm
  read -r stat comm < <(ps -o stat=,comm= -p "$1" 2>/dev/null) || return 1
  [[ $stat != Z* && $comm == "$2" ]]
}

wait_gone() {  # pid command seconds
  local i
  for ((i = 0; i < $3 * 5; i++)); do running "$1" "$2" || return 0; sleep 0.2; done
  return 1
}

# Whether anything listens on TCP port $1 (on 127.0.0.1, on every address, or elsewhere).
port_taken() {
  if command -v ss >/dev/null; then [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
  else (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; fi
}

# This directory's servers, when they run: their pids, and the ports they were started on.
our_postgres() { local pid; pid=$(sed -n 1p "$pg_data/postmaster.pid" 2>/dev/null) && running "$pid" postgres && echo "$pid"; }
our_postgres_port() { sed -n 4p "$pg_data/postmaster.pid" 2>/dev/null; }
our_rabbitmq() { local pid; pid=$(cat "$RABBITMQ_PID_FILE" 2>/dev/null) && running "$pid" beam.smp && echo "$pid"; }
our_rabbitmq_port() { sed -n 's/^listeners\.tcp\.default = 127\.0\.0\.1://p' "$RABBITMQ_CONFIG_FILE.conf" 2>/dev/null; }

# Before anything starts: each port is this directory's server's already, or free. Another
# server on one (the distribution's, a developer's own) is never used in place of ours.
check_ports() {
  local problems=() port what variable
  if our_postgres >/dev/null; then
    [ "$(our_postgres_port)" = "$pg_port" ] ||
      problems+=("the PostgreSQL of $dir already runs on port $(our_postgres_port), not $pg_port: stop it first ($0 stop)")
  elif port_taken "$pg_port"; then
    problems+=("port $pg_port (PostgreSQL) is taken by another server, not ours from $dir: choose a free one with TSYNC_PG_PORT")
  fi
  if our_rabbitmq >/dev/null; then
    [ "$(our_rabbitmq_port)" = "$amqp_port" ] ||
      problems+=("the RabbitMQ of $dir already runs on port $(our_rabbitmq_port), not $amqp_port: stop it first ($0 stop)")
  else
    while read -r port variable what; do
      port_taken "$port" &&
        problems+=("port $port (RabbitMQ $what) is taken by another server, not ours from $dir: choose a free one with $variable")
    done <<PORTS
$amqp_port TSYNC_AMQP_PORT AMQP
$amqps_port TSYNC_AMQPS_PORT AMQPS
$mgmt_port TSYNC_MANAGEMENT_PORT management
$prometheus_port TSYNC_RABBITMQ_PROMETHEUS_PORT prometheus
$RABBITMQ_DIST_PORT TSYNC_AMQP_PORT distribution, TSYNC_AMQP_PORT + 20000
PORTS
  fi
  [ ${#problems[@]} -eq 0 ] && return 0
  for problem in "${problems[@]}"; do say "$problem"; done
  exit 1
}

start_postgres() {
  local pid
  if pid=$(our_postgres); then say "PostgreSQL already runs on 127.0.0.1:$pg_port (pid $pid, data $pg_data)"; return 0; fi
  mkdir -p "$pg_data"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$pg_data"
  chmod 700 "$pg_data"
  if [ ! -f "$pg_data/PG_VERSION" ]; then
    as_postgres "$pg_bin/initdb" -D "$pg_data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  # max_connections: the suite's tests run side by side, each fleet with its pools, workers and
  # lease sessions; at 200 a test that cut its database's sessions met "too many clients" while
  # reconnecting (CI, stop 19). 400 leaves room; each idle slot costs the server little.
  as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_data/server.log" -w -t 60 start -o \
    "-c listen_addresses=127.0.0.1 -c port=$pg_port -c unix_socket_directories='' -c max_connections=400 -c fsync=on -c ssl=on -c ssl_cert_file=$tls/server.pem -c ssl_key_file=$tls/postgres.key" >/dev/null
  say "PostgreSQL 15 on 127.0.0.1:$pg_port (data $pg_data)"
}

stop_postgres() {
  if our_postgres >/dev/null; then
    as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -w -m fast stop >/dev/null || true
    say "PostgreSQL stopped"
  fi
}

rabbitmqctl() { "$rabbit_bin/rabbitmqctl" "$@"; }

start_rabbitmq() {
  local pid
  if pid=$(our_rabbitmq); then say "RabbitMQ already runs on 127.0.0.1:$amqp_port (pid $pid)"; return 0; fi
  mkdir -p "$RABBITMQ_MNESIA_BASE" "$RABBITMQ_LOG_BASE"
  echo "[rabbitmq_management,rabbitmq_prometheus]." > "$RABBITMQ_ENABLED_PLUGINS_FILE"
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
prometheus.tcp.ip = 127.0.0.1
prometheus.tcp.port = $prometheus_port
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
  # The management and prometheus listeners come up a moment after the broker itself.
  for _ in $(seq 1 60); do
    curl -fsS -u guest:guest "http://127.0.0.1:$mgmt_port/api/overview" >/dev/null 2>&1 && break; sleep 0.5
  done
  for _ in $(seq 1 60); do
    curl -fsS "http://127.0.0.1:$prometheus_port/metrics" >/dev/null 2>&1 && break; sleep 0.5
  done
  say "RabbitMQ 3.10 on 127.0.0.1:$amqp_port, management on 127.0.0.1:$mgmt_port, prometheus on 127.0.0.1:$prometheus_port/metrics (node $RABBITMQ_NODENAME, data $dir/rabbitmq)"
}

# Not `rabbitmqctl stop <pid file>`: it waits for the pid to vanish, which a zombie nobody reaps
# never does. The node is asked to stop (by the name it was started with: its port's), then its
# VM is waited for here, a zombie counting as gone, and killed if it lingers.
stop_rabbitmq() {
  local pid
  if pid=$(our_rabbitmq); then
    timeout 60 "$rabbit_bin/rabbitmqctl" -n "tsync-$(our_rabbitmq_port)@localhost" stop >/dev/null 2>&1 ||
      kill "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" beam.smp 60; then
      say "RabbitMQ (pid $pid) did not stop in 60 s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" beam.smp 10 || true
    fi
    say "RabbitMQ stopped"
  fi
  rm -f "$RABBITMQ_PID_FILE"
}

print_env() {
  cat <<ENV
export TSYNC_AMQP_URL=amqp://guest:guest@127.0.0.1:$amqp_port/%2F
export TSYNC_MANAGEMENT_URL=http://guest:guest@127.0.0.1:$mgmt_port
# RabbitMQ's own metrics (rabbitmq_prometheus), for a Prometheus to scrape: not read by the fleet.
export TSYNC_RABBITMQ_PROMETHEUS_URL=http://127.0.0.1:$prometheus_port/metrics
export TSYNC_DATABASE_URL=postgresql://postgres@127.0.0.1:$pg_port/postgres
export TSYNC_TEST_TLS_CA=$tls/ca.pem
export TSYNC_TEST_AMQPS_PORT=$amqps_port
export AMQP_PORT=$amqp_port
ENV
}

case "${1:-}" in
  install) shift; install_packages "$@" ;;
  start) install_packages; check_ports; make_certificates; start_postgres; start_rabbitmq ;;
  stop) stop_rabbitmq; stop_postgres ;;
  status)
    if pid=$(our_postgres) && as_postgres "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$(our_postgres_port)"; then
      say "PostgreSQL up on $(our_postgres_port) (pid $pid)"
    else say "PostgreSQL down"; fi
    if pid=$(our_rabbitmq) && port_taken "$(our_rabbitmq_port)"; then
      say "RabbitMQ up on $(our_rabbitmq_port) (pid $pid)"
    else say "RabbitMQ down"; fi ;;
  env) print_env ;;
  *) echo "usage: $0 install [PACKAGE...]|start|stop|status|env" >&2; exit 2 ;;
esac
