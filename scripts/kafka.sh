#!/usr/bin/env bash
# A real single-node Apache Kafka (KRaft: broker + controller in one JVM) on loopback, for
# development and tests, without Docker.
#   scripts/kafka.sh up|down|status|restart|addr|libs
# A broker with a SASL_SSL listener, SCRAM users and ACLs: scripts/kafka-secure.sh.
# Env: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (KAFKA_PORT+1000), KAFKA_HOME (.cache/kafka),
#      KAFKA_VERSION (3.9.1), KAFKA_HEAP_OPTS (-Xmx512m -Xms256m), KAFKA_PARTITIONS (8),
#      KAFKA_HOST (127.0.0.1: the address both listeners bind to and the broker advertises; the
#      multi-host tests run it inside a network namespace on that namespace's address),
#      KAFKA_RUN_DIR ($KAFKA_HOME/run-$KAFKA_PORT: config, data, logs, pid file).
# Jars come from Maven Central through `mvn dependency:copy-dependencies` and are cached in
# $KAFKA_HOME/libs (git-ignored). Each port gets its own data dir, so tests can run a private
# broker next to the shared one.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KAFKA_NAME=kafka.sh
KAFKA_HOME="${KAFKA_HOME:-$ROOT/.cache/kafka}"
PORT="${KAFKA_PORT:-9092}"
CPORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1000))}"
BROKER_HOST="${KAFKA_HOST:-127.0.0.1}"
RUN="${KAFKA_RUN_DIR:-$KAFKA_HOME/run-$PORT}"
export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
# shellcheck source=scripts/kafka/lib.sh
source "$ROOT/scripts/kafka/lib.sh"

write_config() {
  mkdir -p "$RUN"
  cat > "$RUN/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$BROKER_HOST:$CPORT
listeners=PLAINTEXT://$BROKER_HOST:$PORT,CONTROLLER://$BROKER_HOST:$CPORT
advertised.listeners=PLAINTEXT://$BROKER_HOST:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$RUN/data
num.partitions=${KAFKA_PARTITIONS:-8}
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=3000
log.retention.hours=24
log.segment.bytes=67108864
num.network.threads=2
num.io.threads=4
message.max.bytes=67108864
socket.request.max.bytes=134217728
PROPS
  write_log4j
}

up() {
  if pid="$(running_pid)"; then echo "kafka.sh: already running (pid $pid) on $BROKER_HOST:$PORT" >&2; return 0; fi
  if port_open "$PORT"; then die "port $PORT is taken by another process; set KAFKA_PORT"; fi
  fetch_libs
  write_config
  storage_formatted || format_storage
  start_broker 90
  echo "kafka.sh: up on $BROKER_HOST:$PORT (pid $(cat "$PIDFILE"))" >&2
}

down() {
  if ! stop_broker; then echo "kafka.sh: not running on port $PORT" >&2; return 0; fi
  echo "kafka.sh: stopped (port $PORT)" >&2
}

status() {
  if pid="$(running_pid)" && port_open "$PORT"; then echo "running pid=$pid addr=$BROKER_HOST:$PORT"; else echo "stopped addr=$BROKER_HOST:$PORT"; return 3; fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  restart) down; up ;;
  status) status ;;
  wipe) down; rm -rf "$RUN" ;;
  addr) echo "$BROKER_HOST:$PORT" ;;
  libs) fetch_libs; echo "$LIBS" ;;
  *) echo "usage: scripts/kafka.sh up|down|restart|status|wipe|addr|libs   (SASL_SSL broker: scripts/kafka-secure.sh)" >&2; exit 2 ;;
esac
