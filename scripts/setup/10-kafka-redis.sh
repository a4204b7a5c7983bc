# Sourced by scripts/test.sh. A real single-node Kafka (KRaft, jars from Maven Central) and a Redis
# for the backend suites; exports DISTX_TEST_KAFKA and DISTX_TEST_REDIS. `scripts/kafka.sh down` stops Kafka.
if ! services="$(bash scripts/test-services.sh)"; then
  echo "test.sh: could not start Kafka and Redis for the tests (see above)" >&2
  exit 1
fi
eval "$services"
