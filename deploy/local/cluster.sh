#!/usr/bin/env bash
# A local three-node RabbitMQ 3.10 cluster on 127.0.0.1, for the cluster test and for trying
# the fleet against a cluster by hand. Each node has its own name, data directory and ports;
# nodes 2 and 3 join node 1 (`rabbitmqctl join_cluster`). Quorum queues declared on it are
# replicated on all three nodes; topology.json's policy spreads their leaders.
#
#   deploy/local/cluster.sh start|stop|status|env
#   deploy/local/cluster.sh stop-app N | start-app N   (the node's RabbitMQ application only)
#   deploy/local/cluster.sh kill N | boot N            (SIGKILL of the node's Erlang VM; start it again)
#   deploy/local/cluster.sh leaders VHOST              (quorum queue leaders per node)
#
# TSYNC_CLUSTER_DIR (default .local-cluster in the repository) holds the data;
# TSYNC_CLUSTER_PORT_BASE (default 5700) places the ports: node N listens for AMQP on BASE+N,
# for the management API on BASE+10000+N, for Erlang distribution on BASE+20000+N.
# Needs the packages that deploy/local/services.sh installs.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
dir=${TSYNC_CLUSTER_DIR:-$repo/.local-cluster}
base=${TSYNC_CLUSTER_PORT_BASE:-5700}
rabbit_bin=/usr/lib/rabbitmq/bin
nodes=(1 2 3)
export ERL_EPMD_ADDRESS=127.0.0.1

say() { echo "cluster: $*" >&2; }

amqp_port() { echo $((base + $1)); }
mgmt_port() { echo $((base + 10000 + $1)); }
dist_port() { echo $((base + 20000 + $1)); }
node_name() { echo "tsync-cluster-$base-$1@localhost"; }
node_dir() { echo "$dir/node$1"; }

# The environment rabbitmq-server and rabbitmqctl read for node N.
node_env() {
  local d; d=$(node_dir "$1")
  export RABBITMQ_NODENAME; RABBITMQ_NODENAME=$(node_name "$1")
  export RABBITMQ_MNESIA_BASE=$d/mnesia RABBITMQ_LOG_BASE=$d/log RABBITMQ_PID_FILE=$d/rabbitmq.pid
  export RABBITMQ_ENABLED_PLUGINS_FILE=$d/enabled_plugins RABBITMQ_CONFIG_FILE=$d/rabbitmq
  export RABBITMQ_DIST_PORT; RABBITMQ_DIST_PORT=$(dist_port "$1")
}

ctl() { local n=$1; shift; (node_env "$n"; "$rabbit_bin/rabbitmqctl" -n "$(node_name "$n")" "$@"); }

port_taken() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

# The node's Erlang VM, while it runs (a zombie, which nothing here reaps, does not count).
vm_pid() {
  local pid; pid=$(cat "$(node_dir "$1")/rabbitmq.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && echo "$pid"
}

configure() {
  local n=$1 d; d=$(node_dir "$n")
  mkdir -p "$d/log" "$d/mnesia"
  echo "[rabbitmq_management]." > "$d/enabled_plugins"
  cat > "$d/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$(amqp_port "$n")
management.tcp.ip = 127.0.0.1
management.tcp.port = $(mgmt_port "$n")
collect_statistics_interval = 1000
log.console = false
log.file.level = warning
CONF
}

# Starts node N's VM (with the application) and waits until it and its management API answer.
boot() {
  local n=$1
  if vm_pid "$n" >/dev/null; then say "node $n already runs"; return 0; fi
  for port in "$(amqp_port "$n")" "$(mgmt_port "$n")" "$(dist_port "$n")"; do
    if port_taken "$port"; then say "port $port is taken by another server: choose another TSYNC_CLUSTER_PORT_BASE"; exit 1; fi
  done
  configure "$n"
  rm -f "$(node_dir "$n")/rabbitmq.pid"
  (node_env "$n"; nohup "$rabbit_bin/rabbitmq-server" > "$(node_dir "$n")/log/startup.log" 2>&1 &)
  for _ in $(seq 1 120); do [ -s "$(node_dir "$n")/rabbitmq.pid" ] && break; sleep 0.5; done
  if ! ctl "$n" await_startup --timeout 120 >/dev/null 2>&1; then
    say "node $n did not start; see $(node_dir "$n")/log"; tail -n 20 "$(node_dir "$n")/log/startup.log" >&2; exit 1
  fi
  wait_for_management "$n"
}

wait_for_management() {
  for _ in $(seq 1 120); do
    curl -fsS -u guest:guest "http://127.0.0.1:$(mgmt_port "$1")/api/overview" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  say "the management API of node $1 did not answer"; exit 1
}

clustered_with_first() {
  ctl 1 cluster_status --formatter json 2>/dev/null | grep -q "\"$(node_name "$1")\""
}

start() {
  for n in "${nodes[@]}"; do boot "$n"; done
  for n in 2 3; do
    clustered_with_first "$n" && continue
    # rabbitmqctl prints the joining node's warnings (feature flags, tracking tables): noise here.
    { ctl "$n" stop_app && ctl "$n" reset && ctl "$n" join_cluster "$(node_name 1)" && ctl "$n" start_app &&
      ctl "$n" await_startup --timeout 120; } >> "$(node_dir "$n")/log/join.log" 2>&1 ||
      { say "node $n did not join; see $(node_dir "$n")/log/join.log"; exit 1; }
  done
  for n in "${nodes[@]}"; do wait_for_management "$n"; done
  say "three nodes clustered: AMQP on 127.0.0.1:$(amqp_port 1),$(amqp_port 2),$(amqp_port 3), management on :$(mgmt_port 1) (data $dir)"
}

# Stops node N's VM and waits until its ports close. Not `rabbitmqctl stop PIDFILE`: it waits
# for the process to vanish, and a zombie that nothing reaps never does.
halt() {
  local n=$1 pid
  pid=$(vm_pid "$n") || return 0
  timeout 60 "$rabbit_bin/rabbitmqctl" -n "$(node_name "$n")" stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 120); do
    vm_pid "$n" >/dev/null || return 0
    port_taken "$(dist_port "$n")" || port_taken "$(amqp_port "$n")" || return 0
    sleep 0.5
  done
  kill -9 "$pid" 2>/dev/null || true
}

stop() {
  # The last node to stop should be the first to start again; stopping in reverse and
  # starting in order keeps that so.
  for n in 3 2 1; do halt "$n"; done
  say "stopped"
}

print_env() {
  local urls=() n
  for n in "${nodes[@]}"; do urls+=("amqp://guest:guest@127.0.0.1:$(amqp_port "$n")/%2F"); done
  local IFS=,
  echo "export TSYNC_AMQP_URL=${urls[*]}"
  echo "export TSYNC_MANAGEMENT_URL=http://guest:guest@127.0.0.1:$(mgmt_port 1)"
}

# Quorum queue leaders of a virtual host, counted per node, from the first node that answers.
leaders() {
  local vhost=${1:-/} n
  vhost=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$vhost")
  for n in "${nodes[@]}"; do
    curl -fsS -u guest:guest "http://127.0.0.1:$(mgmt_port "$n")/api/queues/$vhost?columns=name,leader" 2>/dev/null |
      python3 -c 'import json, sys, collections; print(json.dumps(collections.Counter(q.get("leader") for q in json.load(sys.stdin) if q.get("leader"))))' &&
      return 0
  done
  say "no node's management API answered"; exit 1
}

status() {
  for n in "${nodes[@]}"; do
    if pid=$(vm_pid "$n"); then echo "node $n $(node_name "$n") pid $pid"; else echo "node $n $(node_name "$n") down"; fi
  done
}

node_arg() {
  case "${1:-}" in 1|2|3) echo "$1" ;; *) say "which node? 1, 2 or 3"; exit 2 ;; esac
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) print_env ;;
  stop-app) ctl "$(node_arg "${2:-}")" stop_app >/dev/null ;;
  start-app) n=$(node_arg "${2:-}"); ctl "$n" start_app >/dev/null; ctl "$n" await_startup --timeout 120 >/dev/null; wait_for_management "$n" ;;
  kill) n=$(node_arg "${2:-}"); pid=$(vm_pid "$n") && kill -9 "$pid" ;;
  boot) boot "$(node_arg "${2:-}")" ;;
  leaders) leaders "${2:-/}" ;;
  *) echo "usage: $0 start|stop|status|env|stop-app N|start-app N|kill N|boot N|leaders VHOST" >&2; exit 2 ;;
esac
