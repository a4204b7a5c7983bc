# Sourced by scripts/test.sh. A real single-node Kafka (KRaft, jars from Maven Central) and a Redis
# for the backend suites; exports DISTX_TEST_KAFKA and DISTX_TEST_REDIS. `scripts/kafka.sh down` stops Kafka.
eval "$(bash scripts/test-services.sh)"
