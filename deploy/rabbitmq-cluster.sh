#!/usr/bin/env bash
# A three-node RabbitMQ cluster on this machine, beside (never instead of) the default node
# on 5672, for the cluster tests and the production-shaped benchmark.
#
#   deploy/rabbitmq-cluster.sh start    start bridge-c1..3, join them, print their AMQP URLs
#   deploy/rabbitmq-cluster.sh stop     stop the three nodes and remove their data
#   deploy/rabbitmq-cluster.sh status   the cluster's status, as node 1 sees it
#   deploy/rabbitmq-cluster.sh running  print the URLs if all three nodes run as one cluster
#   deploy/rabbitmq-cluster.sh stop-node N / start-node N   one node (the fault tests)
#
# Each node gets its own name, ports, data, logs, pid file and config file: Debian's
# /etc/rabbitmq/rabbitmq.conf pins the listener to 5672, so a node reading it would clash
# with the default node. Needs root (the folders belong to the rabbitmq user).
# Ports: AMQP ${CLUSTER_PORT_BASE:-5681}+0..2, Erlang distribution that +20000.
# Node names ${CLUSTER_NAME:-bridge-c}1..3@localhost, folders under ${CLUSTER_ROOT}: the test
# suite sets all three, so its cluster never meets one started by hand or by another suite.
set -euo pipefail

base_port=${CLUSTER_PORT_BASE:-5681}
root=${CLUSTER_ROOT:-/var/lib/rabbitmq/bridge-cluster}
name=${CLUSTER_NAME:-bridge-c}
host=localhost
wait_s=${CLUSTER_WAIT_S:-90}
NODES=(1 2 3)

node_name() { echo "$name$1@$host"; }
amqp_port() { echo $((base_port + $1 - 1)); }
dist_port() { echo $((base_port + 20000 + $1 - 1)); }

need_root() {
  if [ "$(id -u)" != "0" ]; then
    echo "starting RabbitMQ nodes needs root (their folders belong to the rabbitmq user)" >&2
    exit 2
  fi
  if ! command -v rabbitmq-server >/dev/null 2>&1 && [ ! -x /usr/sbin/rabbitmq-server ]; then
    echo "RabbitMQ is not installed: run deploy/ensure-broker.sh first" >&2
    exit 2
  fi
}

# The environment one node runs (and is administered) with.
node_env() {
  local n=$1 dir="$root/node$1"
  echo RABBITMQ_NODENAME="$(node_name "$n")" \
    RABBITMQ_NODE_PORT="$(amqp_port "$n")" \
    RABBITMQ_DIST_PORT="$(dist_port "$n")" \
    RABBITMQ_MNESIA_BASE="$dir/mnesia" \
    RABBITMQ_LOG_BASE="$dir/log" \
    RABBITMQ_PID_FILE="$dir/rabbit.pid" \
    RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
}

ctl() {
  local n=$1
  shift
  env $(node_env "$n") PATH="$PATH:/usr/sbin" rabbitmqctl -q -n "$(node_name "$n")" "$@"
}

prepare() {
  local n=$1 dir="$root/node$1"
  mkdir -p "$dir/mnesia" "$dir/log"
  cat >"$dir/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$(amqp_port "$n")
loopback_users = none
EOF
  echo "[]." >"$dir/enabled_plugins"  # no plugins: the management listener would clash
  chown -R rabbitmq:rabbitmq "$root"
}

# Start node N detached (unless it answers already); wait_node waits for it.
launch_node() {
  local n=$1
  prepare "$n"
  if ctl "$n" ping >/dev/null 2>&1; then return 0; fi
  # No busy-waiting schedulers: three Erlang VMs spinning beside the default node would
  # take the cores from the service under test (a 2-core machine stalled for seconds).
  env $(node_env "$n") PATH="$PATH:/usr/sbin" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+sbwt none +sbwtdcpu none +sbwtdio none" \
    rabbitmq-server -detached >/dev/null 2>&1
}

wait_node() {
  local n=$1
  timeout "$wait_s" env $(node_env "$n") PATH="$PATH:/usr/sbin" \
    rabbitmqctl -q -n "$(node_name "$n")" wait "$root/node$n/rabbit.pid" >/dev/null \
    || { echo "node $(node_name "$n") did not start within ${wait_s} s: see $root/node$n/log" >&2; exit 1; }
}

start_node() { launch_node "$1"; wait_node "$1"; }

stop_node() {
  local n=$1 pid_file="$root/node$1/rabbit.pid"
  if ctl "$n" stop >/dev/null 2>&1; then return 0; fi
  # Not answering (still booting, or hung): end that node's VM by the pid it wrote, if
  # that pid is still this node's (a stale file's pid may be another process by now).
  local pid
  pid=$(cat "$pid_file" 2>/dev/null || true)
  if [ -n "$pid" ] && tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null \
    | grep -qx "RABBITMQ_NODENAME=$(node_name "$n")"; then
    kill "$pid" 2>/dev/null || true
  fi
}

join() {
  local n=$1 first
  first=$(node_name 1)
  if ctl "$n" cluster_status 2>/dev/null | grep -q "$first"; then return 0; fi
  ctl "$n" stop_app >/dev/null
  ctl "$n" join_cluster "$first" >/dev/null
  ctl "$n" start_app >/dev/null
}

urls() {
  local n out=""
  for n in "${NODES[@]}"; do out+="amqp://guest:guest@127.0.0.1:$(amqp_port "$n")/,"; done
  echo "${out%,}"
}

case "${1:-}" in
  start)
    need_root
    # The three boot side by side (a node's boot is mostly waiting), then join node 1.
    for n in "${NODES[@]}"; do launch_node "$n"; done
    for n in "${NODES[@]}"; do wait_node "$n"; done
    for n in 2 3; do join "$n"; done
    urls
    ;;
  stop)
    for n in 3 2 1; do stop_node "$n"; done
    rm -rf "$root"
    ;;
  stop-node) stop_node "$2" ;;
  start-node) need_root; start_node "$2" ;;
  status) ctl 1 cluster_status ;;
  running)  # exit 0 if all three nodes answer, as one cluster (the tests reuse it then)
    [ "$(ctl 1 eval 'length(rabbit_nodes:all_running()).' 2>/dev/null)" = "3" ] || exit 1
    urls
    ;;
  urls) urls ;;
  *)
    echo "usage: $0 start|stop|status|running|urls|stop-node N|start-node N" >&2
    exit 2
    ;;
esac
