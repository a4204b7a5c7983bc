#!/usr/bin/env bash
# A real single-node Apache Kafka (KRaft: broker + controller in one JVM) on loopback, for
# development and tests, without Docker.
#   scripts/kafka.sh up|down|status|restart|addr|libs
# A broker with a SASL_SSL listener, SCRAM users and ACLs: scripts/kafka-secure.sh.
# Env: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (KAFKA_PORT+1000), KAFKA_HOME (.cache/kafka),
#      KAFKA_VERSION (3.9.1), KAFKA_HEAP_OPTS (-Xmx512m -Xms256m), KAFKA_PARTITIONS (8).
# Jars come from Maven Central through `mvn dependency:copy-dependencies` and are cached in
# $KAFKA_HOME/libs (git-ignored). Each port gets its own data dir, so tests can run a private
# broker next to the shared one.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KAFKA_HOME="${KAFKA_HOME:-$ROOT/.cache/kafka}"
KAFKA_VERSION="${KAFKA_VERSION:-3.9.1}"
PORT="${KAFKA_PORT:-9092}"
CPORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1000))}"
LIBS="$KAFKA_HOME/libs"
RUN="$KAFKA_HOME/run-$PORT"
PIDFILE="$RUN/kafka.pid"
LOG="$RUN/server.log"
export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"

die() { echo "kafka.sh: $*" >&2; exit 1; }

fetch_libs() {
  if [[ -f "$LIBS/.complete-$KAFKA_VERSION" ]]; then return; fi
  command -v java >/dev/null || die "java not found (apt-get install -y openjdk-17-jre-headless)"
  command -v mvn >/dev/null || die "mvn not found (apt-get install -y maven)"
  echo "kafka.sh: fetching Kafka $KAFKA_VERSION jars into $LIBS" >&2
  rm -rf "$LIBS" && mkdir -p "$LIBS"
  mvn -q -B -f "$ROOT/scripts/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS" >&2 \
    || die "mvn could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION"
  touch "$LIBS/.complete-$KAFKA_VERSION"
}

running_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid; pid="$(cat "$PIDFILE")"
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_config() {
  mkdir -p "$RUN"
  cat > "$RUN/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
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
  cat > "$RUN/log4j.properties" <<PROPS
log4j.rootLogger=WARN, file
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$RUN/kafka-internal.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
PROPS
}

up() {
  if pid="$(running_pid)"; then echo "kafka.sh: already running (pid $pid) on 127.0.0.1:$PORT" >&2; return 0; fi
  if port_open "$PORT"; then die "port $PORT is taken by another process; set KAFKA_PORT"; fi
  fetch_libs
  write_config
  if [[ ! -f "$RUN/data/meta.properties" ]]; then
    # Format once; the cluster id is kept with the data so restarts reuse it.
    java -cp "$LIBS/*" -Dlog4j.configuration="file:$RUN/log4j.properties" kafka.tools.StorageTool format \
      -t "$(java -cp "$LIBS/*" -Dlog4j.configuration="file:$RUN/log4j.properties" kafka.tools.StorageTool random-uuid)" \
      -c "$RUN/server.properties" --ignore-formatted >"$RUN/format.log" 2>&1 || { cat "$RUN/format.log" >&2; die "storage format failed"; }
  fi
  # setsid: the broker outlives this shell and gets its own process group.
  setsid java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$RUN/log4j.properties" -cp "$LIBS/*" kafka.Kafka "$RUN/server.properties" \
    >"$LOG" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  local deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-90}))
  until grep -q "Kafka Server started" "$RUN/kafka-internal.log" 2>/dev/null && port_open "$PORT"; do
    if ! running_pid >/dev/null; then tail -30 "$LOG" "$RUN/kafka-internal.log" >&2 || true; die "broker exited during start"; fi
    if (( SECONDS > deadline )); then tail -30 "$RUN/kafka-internal.log" >&2 || true; die "broker did not answer on 127.0.0.1:$PORT in time"; fi
    sleep 0.5
  done
  echo "kafka.sh: up on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"))" >&2
}

down() {
  local pid
  if ! pid="$(running_pid)"; then echo "kafka.sh: not running on port $PORT" >&2; rm -f "$PIDFILE"; return 0; fi
  kill -TERM "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then echo "kafka.sh: broker did not stop in 30 s; killing" >&2; kill -KILL "$pid"; fi
  rm -f "$PIDFILE"
  echo "kafka.sh: stopped (port $PORT)" >&2
}

status() {
  if pid="$(running_pid)" && port_open "$PORT"; then echo "running pid=$pid addr=127.0.0.1:$PORT"; else echo "stopped addr=127.0.0.1:$PORT"; return 3; fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  restart) down; up ;;
  status) status ;;
  wipe) down; rm -rf "$RUN" ;;
  addr) echo "127.0.0.1:$PORT" ;;
  libs) fetch_libs; echo "$LIBS" ;;
  *) echo "usage: scripts/kafka.sh up|down|restart|status|wipe|addr|libs   (SASL_SSL broker: scripts/kafka-secure.sh)" >&2; exit 2 ;;
esac
