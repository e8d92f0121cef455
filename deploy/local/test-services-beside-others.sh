#!/usr/bin/env bash
# The local services start beside servers that already hold the usual ports, as on a Debian host
# whose packages started their own RabbitMQ and PostgreSQL, or on a developer's machine: a real
# PostgreSQL on 5432 (initdb'd here), listeners on RabbitMQ's 5672, 5671, 15672, 15692 (its
# rabbitmq_prometheus plugin's) and 25672, and an Erlang node of another name in epmd; whatever
# already holds one of those plays its part instead. From a directory of its own and on its
# default ports, `services.sh start` must bring up our PostgreSQL and RabbitMQ, answering on their
# ports (RabbitMQ's metrics too, as our node's), and leave the others alone; forced onto a taken
# port, it must refuse in a line naming the port and its variable, starting nothing.
# run-tests.sh runs it before starting its own services (about 25 s); when something already
# holds our default ports (services a developer left running), it tests on ports 100 above them.
set -euo pipefail
cd "$(dirname "$0")/../.."
services=$PWD/deploy/local/services.sh
pg_bin=/usr/lib/postgresql/15/bin
unset TSYNC_LOCAL_DIR TSYNC_PG_PORT TSYNC_AMQP_PORT TSYNC_AMQPS_PORT TSYNC_MANAGEMENT_PORT TSYNC_RABBITMQ_PROMETHEUS_PORT

say() { echo "beside-others: $*" >&2; }
fail() { say "FAIL: $*"; exit 1; }
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
port_taken() {
  if command -v ss >/dev/null; then [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
  else (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; fi
}
accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# An AMQP 0-9-1 server answers the protocol header with a method frame (type 1).
amqp_answers() {
  python3 - "$1" <<'PY'
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as s:
    s.sendall(b"AMQP\x00\x00\x09\x01")
    sys.exit(0 if s.recv(1) == b"\x01" else 1)
PY
}
node_registered() { epmd -names 2>/dev/null | grep -q "^name $1 at port"; }

work=$(mktemp -d /tmp/tsync-beside-others.XXXXXX)
chmod 755 "$work"  # the postgres user works in it when this runs as root
foreign_pg="" listener_pid="" node_pid="" ours_env=()

cleanup() {
  local status=$?
  set +e
  [ -d "$work/ours" ] && env "${ours_env[@]}" TSYNC_LOCAL_DIR="$work/ours" "$services" stop
  [ -d "$work/forced" ] && TSYNC_LOCAL_DIR="$work/forced" "$services" stop
  [ -n "$foreign_pg" ] && as_postgres "$pg_bin/pg_ctl" -D "$foreign_pg" -w -m immediate stop >/dev/null
  [ -n "$listener_pid" ] && kill "$listener_pid" 2>/dev/null && wait "$listener_pid" 2>/dev/null
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null
  rm -rf "$work"
  if [ "$status" = 0 ]; then say "passed in ${SECONDS}s"; else say "failed (status $status)"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$services" install

# (a) The others. PostgreSQL on 5432: a real server, as a developer's machine has one.
if port_taken 5432; then
  say "5432 is already taken: that server is the other PostgreSQL"
else
  foreign_pg=$work/other-postgres
  mkdir -m 700 "$foreign_pg"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$foreign_pg"
  as_postgres "$pg_bin/initdb" -D "$foreign_pg" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  as_postgres "$pg_bin/pg_ctl" -D "$foreign_pg" -l "$foreign_pg/server.log" -w -t 30 start \
    -o "-c listen_addresses=127.0.0.1 -c port=5432 -c unix_socket_directories=''" >/dev/null
  say "another PostgreSQL on 127.0.0.1:5432 (data $foreign_pg)"
fi
# RabbitMQ's usual ports (AMQP, AMQPS, management, prometheus, distribution): listeners that
# accept and hang up.
free=()
for port in 5672 5671 15672 15692 25672; do
  if port_taken "$port"; then say "$port is already taken: that server plays the other RabbitMQ's"; else free+=("$port"); fi
done
if [ ${#free[@]} -gt 0 ]; then
  python3 -u - "${free[@]}" > "$work/listeners.log" 2>&1 <<'PY' &
import selectors, socket, sys
selector = selectors.DefaultSelector()
for port in sys.argv[1:]:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", int(port)))
    server.listen(16)
    selector.register(server, selectors.EVENT_READ)
print("ready")
while True:
    for key, _ in selector.select():
        key.fileobj.accept()[0].close()
PY
  listener_pid=$!
  for _ in $(seq 1 50); do grep -qs ready "$work/listeners.log" && break; sleep 0.1; done
  grep -qs ready "$work/listeners.log" || fail "the other listeners did not start: $(cat "$work/listeners.log")"
  say "other listeners on 127.0.0.1:${free[*]}"
fi
# An Erlang node of another name, registered with epmd first (it starts epmd if none runs), as the
# distribution's rabbit@host is: ours must register beside it.
foreign_node=beside_others_$$
ERL_EPMD_ADDRESS=127.0.0.1 erl -sname "$foreign_node@localhost" -noshell -noinput > "$work/node.log" 2>&1 &
node_pid=$!
for _ in $(seq 1 100); do node_registered "$foreign_node" && break; sleep 0.1; done
node_registered "$foreign_node" || fail "the other Erlang node did not register with epmd: $(cat "$work/node.log")"
say "another Erlang node, $foreign_node, in epmd"

# Our ports: services.sh's defaults, unless something holds one of them (then 100 above).
eval "$(TSYNC_LOCAL_DIR="$work/ours" "$services" env)"
pg_port=${TSYNC_DATABASE_URL##*:}; pg_port=${pg_port%%/*}
amqp_port=$AMQP_PORT amqps_port=$TSYNC_TEST_AMQPS_PORT mgmt_port=${TSYNC_MANAGEMENT_URL##*:}
prometheus_port=${TSYNC_RABBITMQ_PROMETHEUS_URL##*:}; prometheus_port=${prometheus_port%%/*}
for port in "$pg_port" "$amqp_port" "$amqps_port" "$mgmt_port" "$prometheus_port" $((amqp_port + 20000)); do
  case " 5432 5672 5671 15672 15692 25672 " in *" $port "*) fail "default port $port is one of the usual ones" ;; esac
done
busy=()
for port in "$pg_port" "$amqp_port" "$amqps_port" "$mgmt_port" "$prometheus_port" $((amqp_port + 20000)); do
  port_taken "$port" && busy+=("$port")
done
if [ ${#busy[@]} -gt 0 ]; then
  ours_env=(TSYNC_PG_PORT=$((pg_port + 100)) TSYNC_AMQP_PORT=$((amqp_port + 100))
            TSYNC_AMQPS_PORT=$((amqps_port + 100)) TSYNC_MANAGEMENT_PORT=$((mgmt_port + 100)))
  say "our default ports ${busy[*]} are taken (services left running?): testing on ${ours_env[*]}"
  eval "$(env "${ours_env[@]}" TSYNC_LOCAL_DIR="$work/ours" "$services" env)"
  pg_port=$((pg_port + 100)) amqp_port=$((amqp_port + 100)) amqps_port=$((amqps_port + 100)) mgmt_port=$((mgmt_port + 100))
  prometheus_port=${TSYNC_RABBITMQ_PROMETHEUS_URL##*:}; prometheus_port=${prometheus_port%%/*}
  for port in "$pg_port" "$amqp_port" "$amqps_port" "$mgmt_port" "$prometheus_port" $((amqp_port + 20000)); do
    port_taken "$port" && fail "port $port is taken too"
  done
fi

# (c) Forced onto a taken port, start refuses before making or starting anything.
for forced in TSYNC_PG_PORT=5432 TSYNC_AMQP_PORT=5672 TSYNC_AMQPS_PORT=5671 TSYNC_MANAGEMENT_PORT=15672 TSYNC_RABBITMQ_PROMETHEUS_PORT=15692; do
  variable=${forced%%=*} port=${forced#*=}
  if output=$(env "${ours_env[@]}" "$forced" TSYNC_LOCAL_DIR="$work/forced" timeout 60 "$services" start 2>&1); then
    fail "$forced: start succeeded on a taken port: $output"
  fi
  grep -q "^services: port $port (.*) is taken by another server.*$variable\$" <<<"$output" ||
    fail "$forced: no line naming port $port and $variable in: $output"
  [ ! -e "$work/forced" ] || fail "$forced: start made $work/forced before refusing"
  say "$forced refused: $(grep "port $port " <<<"$output")"
done

# (b) Ours, from a fresh directory: up on their own ports, beside the others.
env "${ours_env[@]}" TSYNC_LOCAL_DIR="$work/ours" timeout 180 "$services" start
data=$(PGCONNECT_TIMEOUT=5 "$pg_bin/psql" "$TSYNC_DATABASE_URL" -XAtc "select current_setting('data_directory')")
[ "$data" = "$work/ours/postgres" ] || fail "$TSYNC_DATABASE_URL is the server of $data, not ours"
say "psql $TSYNC_DATABASE_URL: select answers, from $data"
overview=$(curl -fsS --max-time 10 "$TSYNC_MANAGEMENT_URL/api/overview") || fail "no /api/overview at $TSYNC_MANAGEMENT_URL"
listeners=$(python3 -c '
import json, sys
o = json.load(sys.stdin)
print(o["node"], " ".join("%s:%s" % (l["protocol"], l["port"]) for l in o["listeners"]))' <<<"$overview")
[[ $listeners == "tsync-$amqp_port@localhost "* && " $listeners " == *" amqp:$amqp_port "* ]] ||
  fail "management API: $listeners"
[[ " $listeners " == *" amqp/ssl:$amqps_port "* ]] || fail "no AMQPS listener on $amqps_port: $listeners"
amqp_answers "$amqp_port" || fail "no AMQP answer on $amqp_port"
node_registered "tsync-$amqp_port" || fail "our node is not in epmd"
say "RabbitMQ /api/overview: $listeners; AMQP answers on $amqp_port; epmd has tsync-$amqp_port beside $foreign_node"
metrics=$(curl -fsS --max-time 10 "$TSYNC_RABBITMQ_PROMETHEUS_URL") || fail "no RabbitMQ metrics at $TSYNC_RABBITMQ_PROMETHEUS_URL"
grep -q "^rabbitmq_identity_info{rabbitmq_node=\"tsync-$amqp_port@localhost\"" <<<"$metrics" ||
  fail "$TSYNC_RABBITMQ_PROMETHEUS_URL is not our node's: $(grep '^rabbitmq_identity_info' <<<"$metrics")"
grep -q "^rabbitmq_queue_messages_ready " <<<"$metrics" || fail "no rabbitmq_queue_messages_ready at $TSYNC_RABBITMQ_PROMETHEUS_URL"
say "rabbitmq_prometheus answers at $TSYNC_RABBITMQ_PROMETHEUS_URL, for tsync-$amqp_port@localhost"
output=$(env "${ours_env[@]}" TSYNC_LOCAL_DIR="$work/ours" "$services" start 2>&1) || fail "a second start failed: $output"
grep -q "already runs" <<<"$output" || fail "a second start did not find ours running: $output"

# The others are untouched, before and after ours stop.
others_untouched() {
  if [ -n "$foreign_pg" ]; then
    [ "$("$pg_bin/psql" "postgresql://postgres@127.0.0.1:5432/postgres" -XAtc "select current_setting('data_directory')")" = "$foreign_pg" ] ||
      fail "the other PostgreSQL on 5432 does not answer $1"
  else
    port_taken 5432 || fail "what listened on 5432 is gone $1"
  fi
  for port in 5672 5671 15672 15692 25672; do
    if [[ " ${free[*]} " == *" $port "* ]]; then accepts "$port" || fail "the other listener on $port is gone $1"
    else port_taken "$port" || fail "what listened on $port is gone $1"; fi
  done
  [ -z "$listener_pid" ] || kill -0 "$listener_pid" || fail "the other listeners died $1"
  node_registered "$foreign_node" || fail "the other Erlang node left epmd $1"
}
others_untouched "beside ours"
env "${ours_env[@]}" TSYNC_LOCAL_DIR="$work/ours" timeout 120 "$services" stop
for port in "$pg_port" "$amqp_port" "$amqps_port" "$mgmt_port" "$prometheus_port"; do
  port_taken "$port" && fail "port $port still taken after stop"
done
others_untouched "after ours stopped"
say "the others answer as before, beside ours and after they stopped"
