#!/usr/bin/env bash
# Creates a run's credentials in each namespace, once. None of them enters git or a kustomization, and re-applying
# a kustomization never overwrites them (no manifest in k8s/ declares these Secrets):
#   recovery-grpo-auth                  token: a random 256-bit bearer token (every pod, --auth-token-file)
#   recovery-grpo-tls-<component>       ca.crt, tls.crt, tls.key for nats, orchestrator, learner, rollout, reward:
#                                       a CA made for the namespace (its key is discarded) and one certificate per
#                                       role; a client certificate names its role in a URI SAN
#                                       spiffe://recovery-grpo/role/<role>, which the orchestrator (gRPC) and NATS
#                                       (verify_and_map) bind the role to (docs/security.md)
#   recovery-grpo-checkpoint-signing    learner.key, learner.pub: the ed25519 key the learner signs checkpoints with
#   recovery-grpo-checkpoint-verify     learner.pub: the public key the orchestrator and rollout workers check with
#   recovery-grpo-metrics               token: sha256:<hex>, the digest of the bearer token of every role's /metrics
#                                       (--metrics-token-file): a role checks a request against it, no pod holds the token
# and, in the monitoring namespace ($RECOVERY_GRPO_MONITORING_NAMESPACE, default monitoring), the token itself as
#   recovery-grpo-metrics-scrape        token: what the PodMonitor (k8s/monitoring) presents when it scrapes
# One metrics token serves every run the Prometheus scrapes: the script reads it from recovery-grpo-metrics-scrape
# (making that Secret the first time), or from the file $RECOVERY_GRPO_METRICS_TOKEN_FILE (--print: else a fresh one).
# A run namespace's recovery-grpo-metrics that is not its digest (the token itself, as before round 26's digest) is
# replaced by it. --rotate keeps the token; to replace it, delete recovery-grpo-metrics-scrape and run the script for
# every run namespace (docs/kubernetes.md).
#
# --ca-issuer (for k8s/components/per-pod-identity: each rollout, reward and learner pod gets its own certificate from
# cert-manager's csi-driver) keeps the CA's key, in
#   recovery-grpo-ca                    tls.crt, tls.key: the CA, which the component's cert-manager Issuer signs with
# and makes neither recovery-grpo-auth nor the role-wide certificates of learner, rollout and reward (no pod mounts
# them, and each would let its holder present any worker id of its role); it deletes them where they exist. Without
# --ca-issuer the CA key is discarded. Whoever reads recovery-grpo-ca can sign any identity of the run, servers
# included (docs/security.md, "Per-pod certificates"). The CA has pathlen:0 (a CA certificate it signs signs nothing
# TLS accepts). A namespace whose Secrets were made without it has no CA key to keep: --ca-issuer needs --rotate there
# (a new CA; then restart the run's pods). A namespace holding recovery-grpo-ca is refused without --ca-issuer (create
# and --rotate alike, nothing changed); --rotate --drop-ca-issuer goes back: it deletes recovery-grpo-ca and makes the
# shared token and role-wide certificates (a new CA; deploy without the component and restart the run's pods).
#
#   scripts/k8s-secrets.sh NAMESPACE...            create the namespace and the Secrets where missing (kubectl)
#   scripts/k8s-secrets.sh --rotate NAMESPACE...   replace them all (then restart the run's pods)
#   scripts/k8s-secrets.sh --print NAMESPACE...    print the Namespace and Secret manifests instead (no kubectl)
#   ... --ca-issuer ...                            as above, for per-pod certificates
#   scripts/k8s-secrets.sh --rotate --drop-ca-issuer NAMESPACE...   back from per-pod certificates (above)
# Needs openssl. Certificates are valid for RECOVERY_GRPO_CERT_DAYS days (default 365).
set -euo pipefail
AUTH=recovery-grpo-auth
METRICS=recovery-grpo-metrics
METRICS_SCRAPE=recovery-grpo-metrics-scrape
MONITORING="${RECOVERY_GRPO_MONITORING_NAMESPACE:-monitoring}"
COMPONENTS=(nats orchestrator learner rollout reward)
# the role-wide client certificates (and the shared token) that --ca-issuer replaces with per-pod certificates
WORKER_COMPONENTS=(learner rollout reward)
CA_SECRET=recovery-grpo-ca
ca_issuer=0
drop_ca=0
DAYS="${RECOVERY_GRPO_CERT_DAYS:-365}"
mode=create
namespaces=()
for a in "$@"; do
  case "$a" in
    --print) mode=print ;;
    --rotate) mode=rotate ;;
    --ca-issuer) ca_issuer=1 ;;
    --drop-ca-issuer) drop_ca=1 ;;
    -h|--help) sed -n '2,39p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "k8s-secrets: unknown option $a" >&2; exit 2 ;;
    *)
      [[ "$a" =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$ ]] || { echo "k8s-secrets: $a is not a valid namespace name" >&2; exit 2; }
      namespaces+=("$a") ;;
  esac
done
[ "${#namespaces[@]}" -gt 0 ] || { echo "usage: scripts/k8s-secrets.sh [--print|--rotate] [--ca-issuer|--rotate --drop-ca-issuer] NAMESPACE..." >&2; exit 2; }
if [ "$drop_ca" = 1 ]; then
  [ "$ca_issuer" = 0 ] || { echo "k8s-secrets: --drop-ca-issuer and --ca-issuer contradict each other" >&2; exit 2; }
  [ "$mode" = rotate ] || { echo "k8s-secrets: --drop-ca-issuer goes back from per-pod certificates to the shared token and role certificates: it needs --rotate (a new CA)" >&2; exit 2; }
fi
# the certificates this mode makes: with --ca-issuer only the NATS server's and the orchestrator's (the role pods get
# theirs from cert-manager)
if [ "$ca_issuer" = 1 ]; then MADE=(nats orchestrator); else MADE=("${COMPONENTS[@]}"); fi
[[ "$MONITORING" =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$ ]] || { echo "k8s-secrets: RECOVERY_GRPO_MONITORING_NAMESPACE=$MONITORING is not a valid namespace name" >&2; exit 2; }
[[ "$DAYS" =~ ^[1-9][0-9]{0,4}$ ]] || { echo "k8s-secrets: RECOVERY_GRPO_CERT_DAYS=$DAYS is not a number of days" >&2; exit 2; }
command -v openssl >/dev/null 2>&1 || { echo "k8s-secrets: openssl not found (apt-get install openssl)" >&2; exit 1; }

# Private working directory, removed on exit: keys never leave it except into Secrets.
work="$(mktemp -d)"; chmod 700 "$work"; trap 'rm -rf "$work"' EXIT
umask 077

token() { od -An -vtx1 -N32 /dev/urandom | tr -d ' \n'; }
ossl() { openssl "$@" 2>/dev/null; }

# material DIR NAMESPACE: token, CA, one certificate per component made (MADE), the learner's signing key pair; the CA
# key is kept (for recovery-grpo-ca) only with --ca-issuer.
material() {
  local d="$1" ns="$2" c san eku
  mkdir -p "$d"
  token > "$d/token"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  # pathlen:0: it signs leaves only; a CA certificate it signed (a pod's volume asking the Issuer for
  # csi.cert-manager.io/is-ca) cannot sign certificates that TLS peers accept (review30 F3)
  ossl req -x509 "${ec[@]}" -keyout "$d/ca.key" -out "$d/ca.crt" -subj "/O=recovery-grpo/CN=recovery-grpo CA $ns" -days "$DAYS" \
    -addext basicConstraints=critical,CA:TRUE,pathlen:0 -addext keyUsage=critical,keyCertSign,cRLSign
  for c in "${MADE[@]}"; do
    case "$c" in
      nats)
        san="DNS:recovery-grpo-nats,DNS:recovery-grpo-nats.$ns,DNS:recovery-grpo-nats.$ns.svc,DNS:recovery-grpo-nats.$ns.svc.cluster.local,DNS:recovery-grpo-nats-0.recovery-grpo-nats,DNS:recovery-grpo-nats-0.recovery-grpo-nats.$ns.svc.cluster.local"
        eku=serverAuth ;;
      orchestrator)
        # serves gRPC, and is a NATS client
        san="URI:spiffe://recovery-grpo/role/orchestrator,DNS:recovery-grpo-orchestrator,DNS:recovery-grpo-orchestrator.$ns,DNS:recovery-grpo-orchestrator.$ns.svc,DNS:recovery-grpo-orchestrator.$ns.svc.cluster.local"
        eku=serverAuth,clientAuth ;;
      *) san="URI:spiffe://recovery-grpo/role/$c"; eku=clientAuth ;;
    esac
    ossl req "${ec[@]}" -keyout "$d/$c.key" -out "$d/$c.csr" -subj "/O=recovery-grpo/OU=$ns/CN=$c"
    printf 'subjectAltName=%s\nextendedKeyUsage=%s\nkeyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n' "$san" "$eku" > "$d/$c.ext"
    ossl x509 -req -in "$d/$c.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -out "$d/$c.crt" -days "$DAYS" -extfile "$d/$c.ext"
  done
  # nothing is signed later (a rotation makes a new CA), except by the Issuer of per-pod certificates with --ca-issuer
  [ "$ca_issuer" = 1 ] || rm -f "$d/ca.key"
  ossl genpkey -algorithm ed25519 -out "$d/learner-signing.key"
  ossl pkey -in "$d/learner-signing.key" -pubout -out "$d/learner-signing.pub"
}

# metrics_token FILE: the metrics token every run shares, into FILE: $RECOVERY_GRPO_METRICS_TOKEN_FILE's, else (with
# kubectl) the monitoring namespace's Secret, else a fresh one (then made that Secret, unless --print).
metrics_token() {
  local out="$1" existing
  if [ -n "${RECOVERY_GRPO_METRICS_TOKEN_FILE:-}" ]; then
    tr -d ' \t\r\n' < "$RECOVERY_GRPO_METRICS_TOKEN_FILE" > "$out" || { echo "k8s-secrets: RECOVERY_GRPO_METRICS_TOKEN_FILE=$RECOVERY_GRPO_METRICS_TOKEN_FILE: cannot read it" >&2; exit 1; }
    [ "$(wc -c < "$out")" -ge 16 ] || { echo "k8s-secrets: RECOVERY_GRPO_METRICS_TOKEN_FILE=$RECOVERY_GRPO_METRICS_TOKEN_FILE: the token has fewer than 16 characters" >&2; exit 1; }
    return 0
  fi
  if [ "$mode" != print ] && existing="$(kubectl -n "$MONITORING" get secret "$METRICS_SCRAPE" -o 'jsonpath={.data.token}' 2>/dev/null)" && [ -n "$existing" ]; then
    printf '%s' "$existing" | base64 -d > "$out"
    return 0
  fi
  token > "$out"
}

# secret_yaml NAMESPACE NAME key=file...
secret_yaml() {
  local ns="$1" name="$2" kv
  shift 2
  printf -- '---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\n  labels:\n    app.kubernetes.io/name: recovery-grpo\n    app.kubernetes.io/part-of: recovery-grpo\ntype: Opaque\ndata:\n' "$name" "$ns"
  for kv in "$@"; do printf '  %s: %s\n' "${kv%%=*}" "$(base64 < "${kv#*=}" | tr -d '\n')"; done
}

# secrets NAMESPACE DIR: "name key=file..." one Secret a line
secrets() {
  local ns="$1" d="$2" c
  if [ "$ca_issuer" = 1 ]; then echo "$CA_SECRET tls.crt=$d/ca.crt tls.key=$d/ca.key"; else echo "$AUTH token=$d/token"; fi
  for c in "${MADE[@]}"; do echo "recovery-grpo-tls-$c ca.crt=$d/ca.crt tls.crt=$d/$c.crt tls.key=$d/$c.key"; done
  echo "recovery-grpo-checkpoint-signing learner.key=$d/learner-signing.key learner.pub=$d/learner-signing.pub"
  echo "recovery-grpo-checkpoint-verify learner.pub=$d/learner-signing.pub"
  echo "$METRICS token=$work/metrics-digest"
}

metrics_token "$work/metrics-token"
# What the role pods get: sha256:<hex> of the token (lib/metrics METRICS_TOKEN_DIGEST_PREFIX), never the token.
printf 'sha256:%s' "$(tr -d ' \t\r\n' < "$work/metrics-token" | openssl dgst -sha256 -r | cut -d' ' -f1)" > "$work/metrics-digest"
[[ "$(cat "$work/metrics-digest")" =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "k8s-secrets: openssl dgst -sha256 gave no digest of the metrics token" >&2; exit 1; }

if [ "$mode" = print ]; then
  printf -- '---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n' "$MONITORING"
  secret_yaml "$MONITORING" "$METRICS_SCRAPE" "token=$work/metrics-token"
  for ns in "${namespaces[@]}"; do
    printf -- '---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels:\n    app.kubernetes.io/part-of: recovery-grpo\n' "$ns"
    material "$work/$ns" "$ns"
    while read -r name kvs; do
      # shellcheck disable=SC2086
      secret_yaml "$ns" "$name" $kvs
    done < <(secrets "$ns" "$work/$ns")
  done
  exit 0
fi

command -v kubectl >/dev/null 2>&1 || { echo "k8s-secrets: kubectl not found (or use --print)" >&2; exit 1; }
# create_secret NAMESPACE NAME key=file...: (re)made from private files, so no secret appears in a process list
create_secret() {
  local ns="$1" name="$2" kv args=()
  shift 2
  kubectl -n "$ns" delete secret "$name" --ignore-not-found >/dev/null
  for kv in "$@"; do args+=("--from-file=$kv"); done
  kubectl -n "$ns" create secret generic "$name" "${args[@]}" >/dev/null
  kubectl -n "$ns" label secret "$name" app.kubernetes.io/name=recovery-grpo app.kubernetes.io/part-of=recovery-grpo >/dev/null
  echo "$ns: secret $name created"
}
# The PodMonitor's copy of the metrics token, made once (the token was read from it if it exists). A token given by
# file must be the one Prometheus presents: a different one would leave every target of the run down (401).
if [ -n "${RECOVERY_GRPO_METRICS_TOKEN_FILE:-}" ] && existing="$(kubectl -n "$MONITORING" get secret "$METRICS_SCRAPE" -o 'jsonpath={.data.token}' 2>/dev/null)" && [ -n "$existing" ] \
    && [ "$(printf '%s' "$existing" | base64 -d)" != "$(cat "$work/metrics-token")" ]; then
  echo "k8s-secrets: RECOVERY_GRPO_METRICS_TOKEN_FILE holds another token than $MONITORING/$METRICS_SCRAPE, which Prometheus presents; delete that Secret first to replace it" >&2
  exit 1
fi
# A namespace set up for per-pod certificates (its CA key in recovery-grpo-ca) is left alone without --ca-issuer: a
# rotation there that forgot the flag would delete the Issuer's key and hand every worker the shared token again
# (review30 F4). Going back needs --drop-ca-issuer. Checked for every namespace before anything changes.
if [ "$ca_issuer" = 0 ] && [ "$drop_ca" = 0 ]; then
  for ns in "${namespaces[@]}"; do
    if kubectl -n "$ns" get secret "$CA_SECRET" >/dev/null 2>&1; then
      echo "k8s-secrets: $ns: holds $CA_SECRET, the CA key of the per-pod certificates (made with --ca-issuer): rerun with --ca-issuer ($( [ "$mode" = rotate ] && echo "--rotate ")--ca-issuer $ns); to go back to the shared token and role-wide certificates, --rotate --drop-ca-issuer $ns (then deploy without k8s/components/per-pod-identity and restart the run's pods)" >&2
      exit 1
    fi
  done
fi
if ! kubectl -n "$MONITORING" get secret "$METRICS_SCRAPE" >/dev/null 2>&1; then
  kubectl get namespace "$MONITORING" >/dev/null 2>&1 || kubectl create namespace "$MONITORING" >/dev/null
  create_secret "$MONITORING" "$METRICS_SCRAPE" "token=$work/metrics-token"
fi
for ns in "${namespaces[@]}"; do
  kubectl get namespace "$ns" >/dev/null 2>&1 || kubectl create namespace "$ns" >/dev/null
  kubectl label namespace "$ns" app.kubernetes.io/part-of=recovery-grpo --overwrite >/dev/null
  material "$work/$ns" "$ns"
  # The digest of the token Prometheus presents: made where missing, also in a namespace whose other Secrets exist, and
  # where it holds anything else (the token itself, as the script wrote it before the digest: the upgrade).
  if [ "$mode" = rotate ] || ! existing="$(kubectl -n "$ns" get secret "$METRICS" -o 'jsonpath={.data.token}' 2>/dev/null)"; then
    create_secret "$ns" "$METRICS" "token=$work/metrics-digest"
  elif [ "$(printf '%s' "$existing" | base64 -d 2>/dev/null || true)" != "$(cat "$work/metrics-digest")" ]; then
    create_secret "$ns" "$METRICS" "token=$work/metrics-digest"
    echo "$ns: secret $METRICS now holds the metrics token's digest, not the token (restart the run's pods: each read the old value at start)"
  fi
  # The certificates and keys belong together (one CA, one key pair): all are made, or all kept.
  if kubectl -n "$ns" get secret recovery-grpo-tls-nats >/dev/null 2>&1 && [ "$mode" != rotate ]; then
    if [ "$ca_issuer" = 1 ] && ! kubectl -n "$ns" get secret "$CA_SECRET" >/dev/null 2>&1; then
      echo "k8s-secrets: $ns: its Secrets were made without --ca-issuer, so its CA's key was discarded and the Issuer of per-pod certificates has none to sign with; rerun with --rotate --ca-issuer $ns (a new CA; then restart the run's pods)" >&2
      exit 1
    fi
    echo "$ns: secrets exist (kept; --rotate replaces them)"
    continue
  fi
  # What the other mode made and this one does not: with --ca-issuer the shared token and the role-wide certificates
  # (each lets its holder present any worker id of its role), without it the CA key.
  if [ "$ca_issuer" = 1 ]; then stale=("$AUTH" "${WORKER_COMPONENTS[@]/#/recovery-grpo-tls-}"); else stale=("$CA_SECRET"); fi
  for name in "${stale[@]}"; do
    if kubectl -n "$ns" get secret "$name" >/dev/null 2>&1; then
      kubectl -n "$ns" delete secret "$name" --ignore-not-found >/dev/null
      echo "$ns: secret $name deleted (not used with$([ "$ca_issuer" = 1 ] || echo "out") --ca-issuer)"
    fi
  done
  while read -r name kvs; do
    [ "$name" = "$METRICS" ] && continue # above
    # shellcheck disable=SC2086
    create_secret "$ns" "$name" $kvs
  done < <(secrets "$ns" "$work/$ns")
done
