#!/usr/bin/env bash
# Creates the run's credentials in each namespace, once: the Secret recovery-grpo-auth with a random 256-bit token
# (key "token"), which every pod mounts and passes with --auth-token-file. The token never enters git or a
# kustomization, and re-applying a kustomization never overwrites it (no manifest in k8s/ declares this Secret).
#
#   scripts/k8s-secrets.sh NAMESPACE...            create the namespace and the Secret where missing (kubectl)
#   scripts/k8s-secrets.sh --rotate NAMESPACE...   replace the token (then restart the run's pods)
#   scripts/k8s-secrets.sh --print NAMESPACE...    print the Namespace and Secret manifests instead (no kubectl)
set -euo pipefail
SECRET=recovery-grpo-auth
mode=create
namespaces=()
for a in "$@"; do
  case "$a" in
    --print) mode=print ;;
    --rotate) mode=rotate ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "k8s-secrets: unknown option $a" >&2; exit 2 ;;
    *)
      [[ "$a" =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$ ]] || { echo "k8s-secrets: $a is not a valid namespace name" >&2; exit 2; }
      namespaces+=("$a") ;;
  esac
done
[ "${#namespaces[@]}" -gt 0 ] || { echo "usage: scripts/k8s-secrets.sh [--print|--rotate] NAMESPACE..." >&2; exit 2; }

token() { od -An -vtx1 -N32 /dev/urandom | tr -d ' \n'; }

manifests() { # namespace token
  cat <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: $1
  labels:
    app.kubernetes.io/part-of: recovery-grpo
---
apiVersion: v1
kind: Secret
metadata:
  name: $SECRET
  namespace: $1
  labels:
    app.kubernetes.io/name: recovery-grpo
    app.kubernetes.io/part-of: recovery-grpo
type: Opaque
data:
  token: $(printf '%s' "$2" | base64 | tr -d '\n')
YAML
}

if [ "$mode" = print ]; then
  first=1
  for ns in "${namespaces[@]}"; do
    [ $first = 1 ] || echo '---'
    first=0
    manifests "$ns" "$(token)"
  done
  exit 0
fi

command -v kubectl >/dev/null 2>&1 || { echo "k8s-secrets: kubectl not found (or use --print)" >&2; exit 1; }
for ns in "${namespaces[@]}"; do
  kubectl get namespace "$ns" >/dev/null 2>&1 || kubectl create namespace "$ns" >/dev/null
  kubectl label namespace "$ns" app.kubernetes.io/part-of=recovery-grpo --overwrite >/dev/null
  if kubectl -n "$ns" get secret "$SECRET" >/dev/null 2>&1; then
    if [ "$mode" != rotate ]; then echo "$ns: secret $SECRET exists (kept; --rotate replaces it)"; continue; fi
    kubectl -n "$ns" delete secret "$SECRET" >/dev/null
  fi
  # Through a private file, so the token never appears in a process list.
  f="$(mktemp)"; trap 'rm -f "$f"' EXIT
  chmod 600 "$f"; token > "$f"
  kubectl -n "$ns" create secret generic "$SECRET" --from-file=token="$f" >/dev/null
  kubectl -n "$ns" label secret "$SECRET" app.kubernetes.io/name=recovery-grpo app.kubernetes.io/part-of=recovery-grpo >/dev/null
  rm -f "$f"
  echo "$ns: secret $SECRET created"
done
