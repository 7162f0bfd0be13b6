#!/usr/bin/env bash
# Makes sure prometheus and promtool are on PATH (the k8s monitoring tests use both): Debian's prometheus package
# where they are missing and we may. Its service is not needed: tests start their own server on loopback.
exec bash "$(dirname "$0")/ensure-apt.sh" prometheus prometheus promtool
