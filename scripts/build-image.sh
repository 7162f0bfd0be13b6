#!/usr/bin/env bash
# build-image.sh [TAG]: builds docker/Dockerfile into the local image recovery-grpo:TAG (default 0.1.0) without
# any container registry, and prints the build time and the image size.
#
#   docker, when its daemon answers: `docker build` against the official node:20-bookworm-slim base (pulled as
#     usual; this is what a user with a registry does).
#   else podman (installed with buildah, mmdebstrap and runc when missing, Debian's packages):
#     1. /etc/containers/containers.conf (ensure_containers_conf below): podman's defaults fail on machines like
#        this project's CI (Debian 12, cgroup v1): the default container ulimits exceed the hard limits
#        (`setrlimit RLIMIT_NOFILE: Operation not permitted`) and crun refuses the hybrid cgroup layout. The file
#        is written only when there is none; an existing file is left alone (the script says what it needs).
#     2. a local base image, recovery-grpo-base:trixie, made with mmdebstrap (Debian 13: Node.js 20, npm, tini,
#        ca-certificates, nats-server) and `podman import` -- no base image can be pulled here. Made once; delete
#        it (podman rmi recovery-grpo-base:trixie) to remake it.
#     3. `podman build --pull=never --build-arg NODE_IMAGE=recovery-grpo-base:trixie`: the same Dockerfile.
#   The dependencies come from `npm ci` inside the build. Behind a TLS-intercepting proxy (this project's machines:
#   the registry answers, but with the proxy's certificate) the build needs the proxy's CA: the script passes
#   RECOVERY_GRPO_BUILD_CA (default: $NODE_EXTRA_CA_CERTS, when that file exists) as the build secret `ca`, which
#   the Dockerfile's npm ci trusts; the secret is mounted for that one RUN and stored in no layer.
#
# Environment: RECOVERY_GRPO_ENGINE=docker|podman picks the engine; RECOVERY_GRPO_BUILD_CA (see above).
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-0.1.0}
image=recovery-grpo:$tag
base=recovery-grpo-base:trixie
cache=${XDG_CACHE_HOME:-$HOME/.cache}/recovery-grpo
t0=$(date +%s)

engine=${RECOVERY_GRPO_ENGINE:-}
if [ -z "$engine" ]; then
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then engine=docker; else engine=podman; fi
fi

ensure_containers_conf() {
  local conf=/etc/containers/containers.conf
  [ -e "$conf" ] && return 0
  [ "$(id -u)" = 0 ] || { echo "podman needs $conf (see scripts/build-image.sh): run this script as root once, or write it yourself" >&2; return 1; }
  local n; n=$(ulimit -Hn)
  mkdir -p /etc/containers
  cat >"$conf" <<EOF
# Written by recovery-grpo scripts/build-image.sh (docs/kubernetes.md): container ulimits within this machine's
# hard limits, runc (crun 1.8 refuses a hybrid cgroup v1 layout), cgroupfs and a file event log (no systemd).
[containers]
default_ulimits = ["nofile=$n:$n", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  echo "wrote $conf" >&2
}

ensure_base() {
  podman image exists "$base" && return 0
  bash scripts/ensure-apt.sh mmdebstrap mmdebstrap
  mkdir -p "$cache"
  echo "making the base image $base with mmdebstrap (Debian trixie: nodejs, npm, tini, nats-server; a few minutes)" >&2
  mmdebstrap --quiet --variant=minbase --include=nodejs,npm,tini,ca-certificates,nats-server trixie "$cache/base-rootfs.tar"
  podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    "$cache/base-rootfs.tar" "$base" >/dev/null
  rm -f "$cache/base-rootfs.tar"
}

ca=${RECOVERY_GRPO_BUILD_CA:-${NODE_EXTRA_CA_CERTS:-}}
secret=()
if [ -n "$ca" ] && [ -s "$ca" ]; then secret=(--secret "id=ca,src=$ca"); echo "npm ci trusts the extra CA $ca (build secret)" >&2; fi

case "$engine" in
  docker)
    DOCKER_BUILDKIT=1 docker build "${secret[@]}" -f docker/Dockerfile -t "$image" .
    size=$(docker image inspect "$image" --format '{{.Size}}')
    ;;
  podman)
    bash scripts/ensure-apt.sh podman podman
    bash scripts/ensure-apt.sh buildah buildah
    bash scripts/ensure-apt.sh runc runc
    # podman kube play builds its pause image around catatonit, which apt leaves out with --no-install-recommends
    bash scripts/ensure-apt.sh catatonit catatonit
    # with the CNI network backend (Debian 12's podman) pods find each other by name only through the dnsname plugin
    if [ "$(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null)" = cni ]; then
      PATH="$PATH:/usr/lib/cni" bash scripts/ensure-apt.sh golang-github-containernetworking-plugin-dnsname dnsname
    fi
    ensure_containers_conf
    ensure_base
    podman build --pull=never "${secret[@]}" --build-arg "NODE_IMAGE=$base" -f docker/Dockerfile -t "$image" .
    size=$(podman image inspect "$image" --format '{{.Size}}')
    ;;
  *) echo "RECOVERY_GRPO_ENGINE must be docker or podman, not '$engine'" >&2; exit 2 ;;
esac
t1=$(date +%s)
echo "built $image with $engine in $((t1 - t0)) s; image size $((size / 1000000)) MB ($size bytes)"
