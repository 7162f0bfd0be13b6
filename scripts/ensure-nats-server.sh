#!/usr/bin/env bash
# Makes sure a nats-server binary is on PATH: installs Debian's package where it is missing and we may.
set -euo pipefail
command -v nats-server >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "nats-server not found: installing Debian's nats-server package" >&2
  (apt-get install -y -qq nats-server >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq nats-server >/dev/null; })
elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  sudo apt-get update -qq && sudo apt-get install -y -qq nats-server
fi
command -v nats-server >/dev/null 2>&1 || { echo "nats-server is missing and could not be installed: install it (https://nats.io) and put it on PATH" >&2; exit 1; }
