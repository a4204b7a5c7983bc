#!/usr/bin/env bash
# Redis for development and tests: use the one at 127.0.0.1:6379 when it answers; otherwise
# start redis-server (Debian package) on a free port under .cache/redis. Prints redis://host:port.
#   scripts/redis.sh up|down|url
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/.cache/redis"
mkdir -p "$DIR"
answers() { [[ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" == PONG ]]; }
free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

up() {
  if ! command -v redis-server >/dev/null; then
    apt-get update -qq >&2 && apt-get install -y -qq redis-server >&2 || { echo "redis.sh: install redis-server" >&2; exit 1; }
  fi
  if answers 6379; then echo "redis://127.0.0.1:6379"; return; fi
  if [[ -f "$DIR/port" ]] && answers "$(cat "$DIR/port")"; then echo "redis://127.0.0.1:$(cat "$DIR/port")"; return; fi
  local port; port="$(free_port)"
  redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --dir "$DIR" --pidfile "$DIR/redis.pid" \
    --logfile "$DIR/redis.log" --appendonly yes --save "" >/dev/null
  for _ in $(seq 1 50); do answers "$port" && break; sleep 0.1; done
  answers "$port" || { echo "redis.sh: redis-server did not start" >&2; exit 1; }
  echo "$port" > "$DIR/port"
  echo "redis://127.0.0.1:$port"
}
down() { [[ -f "$DIR/pid" || -f "$DIR/redis.pid" ]] && kill "$(cat "$DIR/redis.pid")" 2>/dev/null || true; rm -f "$DIR/port"; }
case "${1:-up}" in
  up|url) up ;;
  down) down ;;
  *) echo "usage: scripts/redis.sh up|down" >&2; exit 2 ;;
esac
