#!/usr/bin/env bash
# Make sure a RabbitMQ broker answers on $AMQP_HOST:$AMQP_PORT (default 127.0.0.1:5672).
# Running: nothing to do. Installed but stopped: start it. Absent and we are root on
# Debian/Ubuntu: install it with apt-get, then start it. Otherwise: say what to do.
set -euo pipefail

host=${AMQP_HOST:-127.0.0.1}
port=${AMQP_PORT:-5672}
wait_s=${BROKER_WAIT_S:-90}

listening() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

wait_until_up() {
  local deadline=$((SECONDS + wait_s))
  until listening; do
    if ((SECONDS >= deadline)); then
      echo "RabbitMQ did not start listening on $host:$port within ${wait_s}s." >&2
      echo "Look at /var/log/rabbitmq/ for the reason." >&2
      exit 1
    fi
    sleep 1
  done
  # The port opens a moment before the broker accepts logins; wait until it is booted.
  if command -v rabbitmq-diagnostics >/dev/null 2>&1; then
    timeout "$wait_s" rabbitmq-diagnostics -q check_running >/dev/null 2>&1 || true
  fi
  echo "RabbitMQ is running on $host:$port."
}

if listening; then
  exit 0
fi

if [ "$host" != "127.0.0.1" ] && [ "$host" != "localhost" ]; then
  echo "RabbitMQ does not answer on $host:$port and is not local: start it there, or set AMQP_URL." >&2
  exit 1
fi

if ! command -v rabbitmq-server >/dev/null 2>&1 && [ ! -x /usr/sbin/rabbitmq-server ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "RabbitMQ is not installed: installing it with apt-get..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq rabbitmq-server >/dev/null
  else
    echo "RabbitMQ is not installed. Install it (Debian/Ubuntu: sudo apt-get install rabbitmq-server)" >&2
    echo "or point AMQP_URL at a running broker, then run this again." >&2
    exit 1
  fi
fi

echo "Starting RabbitMQ..."
if [ "$(id -u)" = "0" ]; then
  PATH="$PATH:/usr/sbin" rabbitmq-server -detached >/dev/null 2>&1 || true
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo -n /usr/sbin/rabbitmq-server -detached >/dev/null 2>&1 || sudo -n service rabbitmq-server start || true
else
  echo "RabbitMQ is installed but not running, and starting it needs root:" >&2
  echo "  sudo service rabbitmq-server start" >&2
  exit 1
fi
wait_until_up
