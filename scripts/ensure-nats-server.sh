#!/usr/bin/env bash
# Makes sure nats-server is on PATH (Debian's package where it is missing and we may).
exec bash "$(dirname "$0")/ensure-apt.sh" nats-server nats-server
