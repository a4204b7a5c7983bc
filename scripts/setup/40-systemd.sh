# Sourced by scripts/test.sh. systemd-analyze, for the tests that verify the shipped units
# (test/e2e/agent-service.test.ts); no-op when present.
if ! command -v systemd-analyze >/dev/null; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd; } >&2
fi
