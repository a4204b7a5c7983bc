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
# A port 9092 held by someone else's broker (another checkout, a system Kafka) is left alone:
# this checkout's test broker then takes a free port pair (broker, controller = broker + 1000).
if [[ -z "${KAFKA_PORT:-}" ]] && ! "$ROOT/scripts/kafka.sh" status >/dev/null 2>&1 && (exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null; then
  for port in $(seq 19092 19192); do
    # This checkout's broker from an earlier run (so runs do not pile up brokers), or a free pair.
    if KAFKA_PORT=$port "$ROOT/scripts/kafka.sh" status >/dev/null 2>&1 || { ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && ! (exec 3<>"/dev/tcp/127.0.0.1/$((port + 1000))") 2>/dev/null; }; then
      export KAFKA_PORT=$port
      break
    fi
  done
  echo "test-services: 127.0.0.1:9092 is taken by another process; the test broker uses ${KAFKA_PORT:?no free port found}" >&2
fi
"$ROOT/scripts/kafka.sh" up >&2
REDIS_URL="$("$ROOT/scripts/redis.sh" up)"
echo "export DISTX_TEST_KAFKA=127.0.0.1:${KAFKA_PORT:-9092}"
echo "export DISTX_TEST_REDIS=$REDIS_URL"
