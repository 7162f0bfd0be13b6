#!/usr/bin/env bash
# What the network-fault suite needs on PATH (Debian's packages where missing and we may): iproute2 (ip, tc:
# namespaces, veths, bridge, netem), nftables (nft: the loss rule where the kernel has no netem), openssl
# (the run's certificates) and nats-server.
set -euo pipefail
here="$(dirname "$0")/.."
bash "$here/ensure-apt.sh" iproute2 ip tc
bash "$here/ensure-apt.sh" nftables nft
bash "$here/ensure-apt.sh" openssl openssl
bash "$here/ensure-nats-server.sh"
