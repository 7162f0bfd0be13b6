#!/usr/bin/env bash
# One run per config value on the cluster, each in its own namespace: renders kustomizations and prints the
# kubectl commands (see scripts/k8s-ablation.ts and docs/kubernetes.md).
#   scripts/k8s-ablation.sh reward.weights.clip=0,0.1,0.2
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
[ -x "$ROOT/node_modules/.bin/tsx" ] || { echo "k8s-ablation: run bash scripts/npm-ci.sh in $ROOT first" >&2; exit 1; }
exec "$ROOT/node_modules/.bin/tsx" "$ROOT/scripts/k8s-ablation.ts" "$@"
