# Shared by scripts/kafka.sh (plain broker) and scripts/kafka-secure.sh (SASL_SSL broker): the
# Kafka jars from Maven Central, the log4j setup, storage formatting, the JVM launch with a wait
# for the port, and the stop. Sourced, not run. The caller sets, before using these:
#   ROOT        the checkout
#   KAFKA_NAME  the script's name, for messages (kafka.sh, kafka-secure.sh)
#   RUN         the broker's run dir (config, data, logs, pid file)
#   PORT        the client listener's port
#   BROKER_HOST (optional) the address it listens on; default 127.0.0.1
# and may set KAFKA_HOME (.cache/kafka), KAFKA_VERSION (3.9.1), KAFKA_START_TIMEOUT (seconds).
# shellcheck shell=bash

KAFKA_HOME="${KAFKA_HOME:-$ROOT/.cache/kafka}"
KAFKA_VERSION="${KAFKA_VERSION:-3.9.1}"
LIBS="$KAFKA_HOME/libs"
PIDFILE="$RUN/kafka.pid"
LOG="$RUN/server.log"

die() { echo "$KAFKA_NAME: $*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/${BROKER_HOST:-127.0.0.1}/$1") 2>/dev/null; }

running_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid; pid="$(cat "$PIDFILE")"
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# The jars of org.apache.kafka:kafka_2.13:$KAFKA_VERSION and its runtime dependencies, fetched
# once through `mvn dependency:copy-dependencies` (scripts/kafka/pom.xml) into $LIBS.
fetch_libs() {
  if [[ -f "$LIBS/.complete-$KAFKA_VERSION" ]]; then return; fi
  command -v java >/dev/null || die "java not found (apt-get install -y openjdk-17-jre-headless)"
  command -v mvn >/dev/null || die "mvn not found (apt-get install -y maven)"
  echo "$KAFKA_NAME: fetching Kafka $KAFKA_VERSION jars into $LIBS" >&2
  rm -rf "$LIBS" && mkdir -p "$LIBS"
  mvn -q -B -f "$ROOT/scripts/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS" >&2 \
    || die "mvn could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION"
  touch "$LIBS/.complete-$KAFKA_VERSION"
}

# A Kafka command-line tool (StorageTool, AclCommand, ...) on the fetched jars, logging to the run dir.
java_tool() { java -cp "$LIBS/*" -Dlog4j.configuration="file:$RUN/log4j.properties" "$@"; }

# Broker logs go to $RUN/kafka-internal.log, warnings and up, plus the lines that say it started.
write_log4j() {
  mkdir -p "$RUN"
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

# Whether the storage of this run dir is formatted (the cluster id is kept with the data, so
# restarts reuse it).
storage_formatted() { [[ -f "$RUN/data/meta.properties" ]]; }

# Formats the storage with a new cluster id; extra arguments (e.g. --add-scram) go to StorageTool.
format_storage() {
  java_tool kafka.tools.StorageTool format -t "$(java_tool kafka.tools.StorageTool random-uuid)" \
    -c "$RUN/server.properties" --ignore-formatted "$@" \
    >"$RUN/format.log" 2>&1 || { cat "$RUN/format.log" >&2; die "storage format failed"; }
}

# Starts the broker on $RUN/server.properties and waits (up to $1 seconds, or
# KAFKA_START_TIMEOUT) until it has said it started and its port answers.
start_broker() {
  local timeout="${KAFKA_START_TIMEOUT:-$1}"
  # setsid: the broker outlives this shell and gets its own process group.
  # shellcheck disable=SC2086 # KAFKA_HEAP_OPTS holds several options
  setsid java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$RUN/log4j.properties" -cp "$LIBS/*" kafka.Kafka "$RUN/server.properties" \
    >"$LOG" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  local deadline=$((SECONDS + timeout))
  until grep -q "Kafka Server started" "$RUN/kafka-internal.log" 2>/dev/null && port_open "$PORT"; do
    if ! running_pid >/dev/null; then tail -30 "$LOG" "$RUN/kafka-internal.log" >&2 || true; die "broker exited during start"; fi
    if (( SECONDS > deadline )); then tail -30 "$RUN/kafka-internal.log" >&2 || true; die "broker did not answer on ${BROKER_HOST:-127.0.0.1}:$PORT in time"; fi
    sleep 0.5
  done
}

# Stops the broker of this run dir: SIGTERM, up to 30 s for a clean shutdown, then SIGKILL.
# Returns 1 when none was running.
stop_broker() {
  local pid
  if ! pid="$(running_pid)"; then rm -f "$PIDFILE"; return 1; fi
  kill -TERM "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then echo "$KAFKA_NAME: broker did not stop in 30 s; killing" >&2; kill -KILL "$pid"; fi
  rm -f "$PIDFILE"
}
