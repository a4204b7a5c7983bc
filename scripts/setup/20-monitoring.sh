# Sourced by scripts/test.sh. Prometheus (+ promtool) and Chromium for test/monitoring; no-op when present.
bash scripts/install-monitoring-deps.sh
