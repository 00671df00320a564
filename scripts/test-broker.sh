#!/usr/bin/env bash
# A throwaway RabbitMQ (Debian's rabbitmq-server) on loopback for the gateway and core tests.
#   scripts/test-broker.sh start   -> prints `export AMQP_URL=...` lines, also kept in $STATE/env
#   scripts/test-broker.sh stop
#   scripts/test-broker.sh env     -> prints the env of the running broker
# Listens on 127.0.0.1 only, with a generated user (guest is removed). State lives in $STATE.
set -euo pipefail

STATE=${OFFLOAD_TEST_BROKER_DIR:-/tmp/offload-test-broker}
PORT=${OFFLOAD_TEST_BROKER_PORT:-5672}
MGMT_PORT=${OFFLOAD_TEST_BROKER_MGMT_PORT:-15672}
NODE=offload-test-$PORT@localhost
# the Debian wrappers in /usr/sbin force HOME=/var/lib/rabbitmq (its cookie); call the real scripts
BIN=/usr/lib/rabbitmq/bin

as_rabbitmq() {
  runuser -u rabbitmq -- env "${BROKER_ENV[@]}" "$@"
}

BROKER_ENV=(
  HOME="$STATE"
  RABBITMQ_NODENAME="$NODE"
  RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  RABBITMQ_NODE_PORT="$PORT"
  RABBITMQ_DIST_PORT=$((PORT + 20000))
  ERL_EPMD_ADDRESS=127.0.0.1
  RABBITMQ_MNESIA_BASE="$STATE/mnesia"
  RABBITMQ_LOG_BASE="$STATE/log"
  RABBITMQ_CONFIG_FILE="$STATE/rabbitmq"
  RABBITMQ_ENABLED_PLUGINS_FILE="$STATE/enabled_plugins"
  RABBITMQ_PID_FILE="$STATE/rabbitmq.pid"
)

ctl() { as_rabbitmq "$BIN/rabbitmqctl" -n "$NODE" "$@"; }

start() {
  if [ -f "$STATE/env" ] && ctl status >/dev/null 2>&1; then cat "$STATE/env"; return; fi
  command -v rabbitmq-server >/dev/null || { echo "rabbitmq-server is not installed: run scripts/install-deps.sh" >&2; exit 1; }
  rm -rf "$STATE"; mkdir -p "$STATE/log"
  cat > "$STATE/rabbitmq.conf" <<CONF
listeners.tcp.1 = 127.0.0.1:$PORT
management.tcp.ip = 127.0.0.1
management.tcp.port = $MGMT_PORT
loopback_users.guest = true
CONF
  echo '[rabbitmq_management].' > "$STATE/enabled_plugins"
  # the erlang cookie must belong to the user running the node
  head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$STATE/.erlang.cookie"
  chmod 400 "$STATE/.erlang.cookie"
  chown -R rabbitmq:rabbitmq "$STATE"
  as_rabbitmq setsid "$BIN/rabbitmq-server" > "$STATE/server.out" 2>&1 < /dev/null &
  ctl wait --timeout 60 "$STATE/rabbitmq.pid" >/dev/null
  local user=offload pass
  pass=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  ctl add_user "$user" "$pass" >/dev/null
  ctl set_user_tags "$user" administrator >/dev/null
  ctl set_permissions -p / "$user" '.*' '.*' '.*' >/dev/null
  ctl delete_user guest >/dev/null
  # the credentials file: readable by its owner only
  install -m 0600 /dev/null "$STATE/env"
  cat > "$STATE/env" <<ENV
export AMQP_URL=amqp://$user:$pass@127.0.0.1:$PORT/
export RABBITMQ_MGMT_URL=http://$user:$pass@127.0.0.1:$MGMT_PORT/
export OFFLOAD_TEST_BROKER_DIR=$STATE
ENV
  cat "$STATE/env"
}

stop() {
  [ -d "$STATE" ] || return 0
  ctl stop >/dev/null 2>&1 || true
  if [ -f "$STATE/rabbitmq.pid" ]; then kill "$(cat "$STATE/rabbitmq.pid")" 2>/dev/null || true; fi
  rm -rf "$STATE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) cat "$STATE/env" ;;
  # the broker-down tests stop and start the node app without losing the user
  pause) ctl stop_app >/dev/null ;;
  resume) ctl start_app >/dev/null ;;
  *) echo "usage: $0 start|stop|env|pause|resume" >&2; exit 2 ;;
esac
