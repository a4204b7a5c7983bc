# Sourced by scripts/test.sh. The SASL_SSL broker with SCRAM users and ACLs that
# test/e2e/backends/secure-kafka.test.ts runs against (scripts/kafka-secure.sh); exports
# DISTX_TEST_KAFKA_SECURE and DISTX_TEST_KAFKA_SECURE_DIR. Quiet when it is already up.
# openssl makes the certificates (here and in test/helpers/secure-redis.ts).
if ! command -v openssl >/dev/null; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl; } >&2
fi
# Ports held by someone else (another checkout's broker) are left alone: a free pair is taken.
if [[ -z "${KAFKA_SECURE_PORT:-}" ]] && ! bash scripts/kafka-secure.sh status >/dev/null 2>&1 \
  && { (exec 3<>/dev/tcp/127.0.0.1/9094) 2>/dev/null || (exec 3<>/dev/tcp/127.0.0.1/10094) 2>/dev/null; }; then
  for port in $(seq 29094 2 29194); do
    # This checkout's broker from an earlier run, or a free pair.
    if KAFKA_SECURE_PORT=$port bash scripts/kafka-secure.sh status >/dev/null 2>&1 || { ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && ! (exec 3<>"/dev/tcp/127.0.0.1/$((port + 1000))") 2>/dev/null; }; then
      export KAFKA_SECURE_PORT=$port
      break
    fi
  done
fi
if ! bash scripts/kafka-secure.sh up >&2; then
  echo "test.sh: could not start the SASL_SSL Kafka broker for the tests (see above)" >&2
  exit 1
fi
eval "$(bash scripts/kafka-secure.sh env)"
