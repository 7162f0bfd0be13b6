#!/usr/bin/env bash
# Makes sure prometheus and promtool are on PATH (the k8s monitoring tests use both): installs Debian's prometheus
# package where they are missing and we may. The package's service is not needed (tests start their own server on
# loopback); without systemd it is not started.
set -euo pipefail
have() { command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; }
have && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "prometheus/promtool not found: installing Debian's prometheus package" >&2
  export DEBIAN_FRONTEND=noninteractive
  (apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends prometheus >/dev/null; })
elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
fi
have || { echo "prometheus/promtool are missing and could not be installed: install Prometheus (https://prometheus.io) and put prometheus and promtool on PATH" >&2; exit 1; }
