# Sourced by scripts/test.sh. Prometheus (+ promtool) and Chromium for the monitoring tests (test/integration/monitoring, test/e2e/monitoring); no-op when present.
bash scripts/install-monitoring-deps.sh
