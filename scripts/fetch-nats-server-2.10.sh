#!/usr/bin/env bash
# Fetches nats-server 2.10 (Debian trixie's package, the version the container image and k8s/base run) into a folder
# of its own, for measuring against the 2.9.10 that Debian bookworm ships and the scripts install: e.g.
#   bash scripts/fetch-nats-server-2.10.sh && BENCH_NATS_BINARY_AFTER=.tmp/nats-2.10/nats-server ... bench broadcast
# or, for the tests, the local run and `npm run faults`: RECOVERY_GRPO_NATS_SERVER=.tmp/nats-2.10/nats-server
# apt downloads the package with a list, state and cache of its own (checked against trixie's signed index); nothing
# else on the system changes. Root and apt-get needed. Not the default: docs/performance-history/broadcast.md, round 11.
set -euo pipefail
dir=${1:-"$(dirname "$0")/../.tmp/nats-2.10"}
[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || { echo "needs root, apt-get and dpkg-deb" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/deb" "$dir"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" > "$tmp/sources.list"
apt=(-o "Dir::Etc::sourcelist=$tmp/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$tmp/lists"
     -o "Dir::Cache=$tmp/cache" -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root -o Debug::NoLocking=1 -qq)
apt-get "${apt[@]}" update >/dev/null
(cd "$tmp/deb" && apt-get "${apt[@]}" download nats-server >/dev/null)
dpkg-deb -x "$tmp"/deb/nats-server_*.deb "$tmp/root"
install -m 755 "$tmp/root/usr/sbin/nats-server" "$dir/nats-server"
"$dir/nats-server" --version
