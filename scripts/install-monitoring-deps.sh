#!/bin/sh
# Installs what the monitoring tests need from Debian when it is missing: prometheus (the
# server and promtool), prometheus-alertmanager (the alert webhook is tested by posting into it) and chromium (headless browser for the dashboard test). Idempotent
# and quiet; the Debian prometheus service is not left running (no systemd in CI; where
# there is one, it is stopped and disabled).
set -eu
missing=""
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || missing="$missing prometheus"
command -v prometheus-alertmanager >/dev/null 2>&1 || missing="$missing prometheus-alertmanager"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
if [ -n "$missing" ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "install-monitoring-deps: installing$missing" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus-alertmanager 2>/dev/null; then
    $SUDO systemctl disable --now prometheus-alertmanager >/dev/null 2>&1 || true
  fi
fi
promtool --version >/dev/null
/usr/bin/chromium --version >/dev/null 2>&1 || { echo "install-monitoring-deps: chromium does not start" >&2; exit 1; }
