#!/usr/bin/env bash
# A real single-node Kafka (KRaft) configured as a cluster should be: one SASL_SSL listener
# (TLS 1.3, SCRAM-SHA-512/256), no plaintext listener for clients, the StandardAuthorizer with
# allow.everyone.if.no.acl.found=false, and one SCRAM user per role with the ACLs that role needs
# (docs/security-backends.md). Certificates (a CA and the broker's, for 127.0.0.1/localhost) and
# passwords are generated at first start and kept under the run dir; SCRAM users are created at
# format time (--add-scram), ACLs with kafka-acls (kafka.admin.AclCommand).
#   scripts/kafka-secure.sh up|down|status|restart|wipe|env|acls PREFIX
# `env` prints the export lines the tests read (DISTX_TEST_KAFKA_SECURE, DISTX_TEST_KAFKA_SECURE_DIR);
# `acls PREFIX` grants the role ACLs for another topic prefix (up grants them for
# $KAFKA_SECURE_ACL_PREFIXES, default "distx distx-test distx-nodeid").
# Files in the secrets dir: ca.pem, {admin,scheduler,agent}.password, admin.properties.
# Env: KAFKA_SECURE_PORT (9094), controller port = port + 1000, KAFKA_HOME (.cache/kafka).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KAFKA_NAME=kafka-secure.sh
KAFKA_HOME="${KAFKA_HOME:-$ROOT/.cache/kafka}"
PORT="${KAFKA_SECURE_PORT:-9094}"
CPORT=$((PORT + 1000))
RUN="$KAFKA_HOME/secure-$PORT"
SECRETS="$RUN/secrets"
SCHEDULER_USER=distx-scheduler
AGENT_USER=distx-agent
export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx384m -Xms128m}"
# shellcheck source=scripts/kafka/lib.sh
source "$ROOT/scripts/kafka/lib.sh"

make_secrets() {
  [[ -f "$SECRETS/.complete" ]] && return
  command -v openssl >/dev/null || die "openssl not found (apt-get install -y openssl)"
  rm -rf "$SECRETS" && mkdir -p "$SECRETS" && chmod 700 "$SECRETS"
  (
    cd "$SECRETS"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=distx-test-kafka-ca" \
      -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout broker.key -out broker.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > broker.ext
    openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 -extfile broker.ext -out broker.crt 2>/dev/null
    # Kafka's PEM key store: an unencrypted PKCS#8 key followed by the certificate chain.
    { openssl pkcs8 -topk8 -nocrypt -in broker.key; cat broker.crt ca.pem; } > broker.pem
    rm -f broker.csr broker.ext ca.srl
    for who in admin scheduler agent controller; do openssl rand -hex 24 > "$who.password"; done
    cat > admin.properties <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(cat admin.password)";
ssl.truststore.type=PEM
ssl.truststore.location=$SECRETS/ca.pem
PROPS
    touch .complete
  )
}

write_config() {
  mkdir -p "$RUN" && chmod 700 "$RUN"
  local admin controller
  admin="$(cat "$SECRETS/admin.password")"
  controller="$(cat "$SECRETS/controller.password")"
  (umask 077; cat > "$RUN/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
# Clients reach only the SASL_SSL listener. The controller listener is loopback-only and itself
# needs a password (PLAIN: SCRAM credentials live in the metadata log the controller serves).
listeners=SASL_SSL://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=SASL_SSL://127.0.0.1:$PORT
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SASL_PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="controller" password="$controller" user_controller="$controller";
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$SECRETS/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$SECRETS/ca.pem
ssl.protocol=TLSv1.3
ssl.enabled.protocols=TLSv1.3
ssl.client.auth=none
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:controller
log.dirs=$RUN/data
num.partitions=8
auto.create.topics.enable=false
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
  )
  write_log4j
}

# The ACLs of each role for the topics of one prefix (docs/security-backends.md explains them).
# Kafka ACLs name topics, not partitions: an agent may read the whole assignments topic.
acls() {
  local p="$1"
  [[ "$p" =~ ^[A-Za-z0-9._-]{1,100}$ ]] || die "bad topic prefix: $p"
  [[ -f "$RUN/acls-$p" ]] && return
  fetch_libs
  local cfg=(--bootstrap-server "127.0.0.1:$PORT" --command-config "$SECRETS/admin.properties" --add --force)
  local pids=() log="$RUN/acls-$p.log"
  : > "$log"
  # Scheduler: owns every topic of the prefix (creates them, writes submissions/assignments,
  # reads submissions/events/load) and its consumer groups: each active scheduler consumes in a
  # group of its own named <prefix>-scheduler-<uuid> (a failover does not wait for the old one's
  # session to expire) and deletes its predecessor's, hence a prefixed group ACL with Delete.
  java_tool kafka.admin.AclCommand "${cfg[@]}" --allow-principal "User:$SCHEDULER_USER" \
    --operation Create --operation Read --operation Write --operation Describe --operation DescribeConfigs \
    --resource-pattern-type prefixed --topic "$p." >>"$log" 2>&1 & pids+=($!)
  java_tool kafka.admin.AclCommand "${cfg[@]}" --allow-principal "User:$SCHEDULER_USER" \
    --operation Read --operation Describe --operation Delete --resource-pattern-type prefixed --group "$p-scheduler" >>"$log" 2>&1 & pids+=($!)
  # Agents: read assignments; write task events and load samples; nothing else (no submissions,
  # no results of other topics, no topic creation, no other group than distx-agent-<node>).
  java_tool kafka.admin.AclCommand "${cfg[@]}" --allow-principal "User:$AGENT_USER" \
    --operation Read --operation Describe --topic "$p.assignments" >>"$log" 2>&1 & pids+=($!)
  java_tool kafka.admin.AclCommand "${cfg[@]}" --allow-principal "User:$AGENT_USER" \
    --operation Write --operation Describe --topic "$p.task-events" --topic "$p.node-load" >>"$log" 2>&1 & pids+=($!)
  java_tool kafka.admin.AclCommand "${cfg[@]}" --allow-principal "User:$AGENT_USER" \
    --operation Read --resource-pattern-type prefixed --group "distx-agent-" >>"$log" 2>&1 & pids+=($!)
  local ok=1
  for pid in "${pids[@]}"; do wait "$pid" || ok=0; done
  ((ok)) || { cat "$log" >&2; die "kafka-acls failed for prefix $p"; }
  touch "$RUN/acls-$p"
}

# "distx" is the default prefix; "distx-test" is the one test/e2e/backends/secure-kafka.test.ts uses,
# "distx-nodeid" test/e2e/security/kafka-node-identity.test.ts's (its own topics on the shared broker).
default_acls() { for p in ${KAFKA_SECURE_ACL_PREFIXES:-distx distx-test distx-nodeid}; do acls "$p"; done; }

up() {
  if pid="$(running_pid)"; then default_acls; return 0; fi
  if port_open "$PORT"; then die "port $PORT is taken by another process; set KAFKA_SECURE_PORT"; fi
  if port_open "$CPORT"; then die "port $CPORT is taken by another process; set KAFKA_SECURE_PORT"; fi
  command -v java >/dev/null || die "java not found (apt-get install -y openjdk-17-jre-headless)"
  fetch_libs
  make_secrets
  write_config
  if ! storage_formatted; then
    rm -f "$RUN"/acls-*
    # SCRAM users are written into the metadata log at format time: no window without them.
    format_storage \
      --add-scram "SCRAM-SHA-512=[name=admin,password=$(cat "$SECRETS/admin.password")]" \
      --add-scram "SCRAM-SHA-512=[name=$SCHEDULER_USER,password=$(cat "$SECRETS/scheduler.password")]" \
      --add-scram "SCRAM-SHA-512=[name=$AGENT_USER,password=$(cat "$SECRETS/agent.password")]"
  fi
  start_broker 120
  default_acls
  echo "kafka-secure.sh: SASL_SSL broker up on 127.0.0.1:$PORT (pid $(cat "$PIDFILE")); secrets in $SECRETS" >&2
}

down() {
  stop_broker || return 0
  echo "kafka-secure.sh: stopped (port $PORT)" >&2
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  restart) down; up ;;
  status) if pid="$(running_pid)" && port_open "$PORT"; then echo "running pid=$pid addr=127.0.0.1:$PORT"; else echo "stopped addr=127.0.0.1:$PORT"; exit 3; fi ;;
  wipe) down; rm -rf "$RUN" ;;
  env) echo "export DISTX_TEST_KAFKA_SECURE=127.0.0.1:$PORT"; echo "export DISTX_TEST_KAFKA_SECURE_DIR=$SECRETS" ;;
  acls) [[ -n "${2:-}" ]] || die "usage: scripts/kafka-secure.sh acls PREFIX"; running_pid >/dev/null || die "broker not running"; acls "$2" ;;
  *) echo "usage: scripts/kafka-secure.sh up|down|restart|status|wipe|env|acls PREFIX" >&2; exit 2 ;;
esac
