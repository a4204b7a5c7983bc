#!/usr/bin/env bash
# Brings up what the Kafka/Redis tests need, idempotently: Java + Maven (Debian), the Kafka
# jars (Maven Central), a KRaft broker on 127.0.0.1:${KAFKA_PORT:-9092}, and a Redis.
# Prints `export` lines for the addresses the tests read, so use it as:
#   eval "$(scripts/test-services.sh)"
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
need=()
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
command -v redis-server >/dev/null || need+=(redis-server)
if ((${#need[@]})); then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } >&2
fi
"$ROOT/scripts/kafka.sh" up >&2
REDIS_URL="$("$ROOT/scripts/redis.sh" up)"
echo "export DISTX_TEST_KAFKA=127.0.0.1:${KAFKA_PORT:-9092}"
echo "export DISTX_TEST_REDIS=$REDIS_URL"
