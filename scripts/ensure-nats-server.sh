#!/usr/bin/env bash
# Makes sure nats-server 2.10 or newer is on PATH: the version the container image (Debian trixie) and k8s/base
# (nats:2.10) run. Debian bookworm's package is 2.9.10, whose core fan-out copies every message into a fresh buffer
# per subscriber (docs/performance.md, round 11); where that or nothing is installed, Debian trixie's package is
# downloaded by apt with a list and state of its own (apt checks it against trixie's signed index; nothing else on
# the system changes) and its binary installed as $NATS_SERVER_INSTALL_DIR/nats-server (default /usr/local/bin,
# ahead of /usr/sbin on PATH). Without root or apt: bookworm's package, as before, or a message saying what to install.
set -euo pipefail
want=2.10.0
version() { "${1:-nats-server}" --version 2>/dev/null | sed -n 's/^nats-server: v//p'; }
recent() { [ -n "$1" ] && [ "$(printf '%s\n%s\n' "$want" "$1" | sort -V | head -1)" = "$want" ]; }
have=$(version || true)
recent "$have" && exit 0
dir=${NATS_SERVER_INSTALL_DIR:-/usr/local/bin}
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1; then
  echo "nats-server ${have:-not found}: installing Debian trixie's nats-server binary as $dir/nats-server" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/deb"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" > "$tmp/sources.list"
  apt=(-o "Dir::Etc::sourcelist=$tmp/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$tmp/lists"
       -o "Dir::Cache=$tmp/cache" -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root -o Debug::NoLocking=1 -qq)
  if apt-get "${apt[@]}" update >/dev/null && (cd "$tmp/deb" && apt-get "${apt[@]}" download nats-server >/dev/null); then
    dpkg-deb -x "$tmp"/deb/nats-server_*.deb "$tmp/root"
    mkdir -p "$dir"
    install -m 755 "$tmp/root/usr/sbin/nats-server" "$dir/nats-server.new" && mv -f "$dir/nats-server.new" "$dir/nats-server"
    recent "$(version "$dir/nats-server" || true)" && exit 0
    echo "trixie's nats-server did not run here: falling back to Debian's package on PATH" >&2
    rm -f "$dir/nats-server"
  else
    echo "could not download trixie's nats-server: falling back to Debian's package on PATH" >&2
  fi
fi
# bookworm's 2.9.10 (or whatever apt has) still runs everything; the broadcast's first versions cost more with it
rm -rf "${tmp:-/nonexistent}"
exec bash "$(dirname "$0")/ensure-apt.sh" nats-server nats-server
