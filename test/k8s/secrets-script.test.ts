// scripts/k8s-secrets.sh against a cluster, for the metrics token (round 26): one token serves every run the
// Prometheus scrapes, so the script reads it from the monitoring namespace's Secret recovery-grpo-metrics-scrape (making
// it the first time) and copies it into each run namespace, also into one whose other Secrets exist (the upgrade).
// kubectl is a stand-in here (no cluster on this machine): a shell script keeping each Secret as files under a folder,
// answering exactly the calls the script makes, and logging every argument list (no secret may appear in one).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './tools.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCRIPT = join(ROOT, 'scripts/k8s-secrets.sh');

/** kubectl as the script uses it, on a folder: STATE/<namespace>/<secret>/<key>. */
const FAKE_KUBECTL = `#!/usr/bin/env bash
set -euo pipefail
echo "$*" >> "$FAKE_KUBE/calls.log"
ns=""
if [ "\${1:-}" = -n ]; then ns="$2"; shift 2; fi
verb="$1"; kind="$2"; shift 2
case "$verb $kind" in
  "get namespace") [ -d "$FAKE_KUBE/ns/$1" ] ;;
  "create namespace") mkdir -p "$FAKE_KUBE/ns/$1" ;;
  "label namespace"|"label secret") : ;;
  "get secret")
    d="$FAKE_KUBE/ns/$ns/$1"; [ -d "$d" ] || { echo "Error from server (NotFound): secrets \\"$1\\" not found" >&2; exit 1; }
    if [ "\${2:-}" = -o ]; then base64 < "$d/token" | tr -d '\\n'; fi ;;
  "delete secret") rm -rf "$FAKE_KUBE/ns/$ns/$1" ;;
  "create secret")
    name="$2"; shift 2; d="$FAKE_KUBE/ns/$ns/$name"
    [ -d "$FAKE_KUBE/ns/$ns" ] || { echo "namespace $ns not found" >&2; exit 1; }
    mkdir -p "$d"
    for a in "$@"; do kv="\${a#--from-file=}"; cp "\${kv#*=}" "$d/\${kv%%=*}"; done ;;
  *) echo "fake kubectl: unexpected: $verb $kind $*" >&2; exit 2 ;;
esac
`;

test('k8s-secrets.sh with kubectl: one metrics token, made once in the monitoring namespace and copied into every run namespace, also an existing one', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'rg-fake-kube-'));
  try {
    writeFileSync(join(dir, 'kubectl'), FAKE_KUBECTL);
    chmodSync(join(dir, 'kubectl'), 0o755);
    const env = { ...process.env, PATH: `${dir}:${process.env.PATH}`, FAKE_KUBE: dir, RECOVERY_GRPO_METRICS_TOKEN_FILE: '' };
    const secret = (ns: string, name: string, key = 'token') => {
      const f = join(dir, 'ns', ns, name, key);
      return existsSync(f) ? readFileSync(f, 'utf8') : undefined;
    };

    let r = run('bash', [SCRIPT, 'run-a'], { env });
    assert.equal(r.code, 0, r.out);
    const token = secret('monitoring', 'recovery-grpo-metrics-scrape')!;
    assert.match(token, /^[0-9a-f]{64}$/, 'the scrape Secret: 256 random bits, hex');
    assert.equal(secret('run-a', 'recovery-grpo-metrics'), token, 'run-a holds the token Prometheus presents');
    assert.notEqual(secret('run-a', 'recovery-grpo-auth'), token, 'not the gRPC token');
    assert.ok(secret('run-a', 'recovery-grpo-tls-nats', 'ca.crt'), 'and the other Secrets');

    // a second run, later: the same token, read from the monitoring namespace
    r = run('bash', [SCRIPT, 'run-b'], { env });
    assert.equal(r.code, 0, r.out);
    assert.equal(secret('monitoring', 'recovery-grpo-metrics-scrape'), token, 'the scrape Secret is kept');
    assert.equal(secret('run-b', 'recovery-grpo-metrics'), token);

    // the upgrade from round 25: a namespace with its Secrets but no metrics token gets it, the rest is kept
    rmSync(join(dir, 'ns', 'run-a', 'recovery-grpo-metrics'), { recursive: true });
    const ca = secret('run-a', 'recovery-grpo-tls-nats', 'ca.crt');
    r = run('bash', [SCRIPT, 'run-a'], { env });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /run-a: secret recovery-grpo-metrics created/);
    assert.match(r.out, /run-a: secrets exist \(kept/);
    assert.equal(secret('run-a', 'recovery-grpo-metrics'), token);
    assert.equal(secret('run-a', 'recovery-grpo-tls-nats', 'ca.crt'), ca, 'the certificates are kept');

    // --rotate replaces the run's credentials, not the token every run shares
    const grpc = secret('run-b', 'recovery-grpo-auth');
    r = run('bash', [SCRIPT, '--rotate', 'run-b'], { env });
    assert.equal(r.code, 0, r.out);
    assert.notEqual(secret('run-b', 'recovery-grpo-auth'), grpc, 'the gRPC token is new');
    assert.equal(secret('run-b', 'recovery-grpo-metrics'), token, 'the metrics token is the shared one');

    // a token given by file that is not the one Prometheus presents is refused, naming the Secret
    writeFileSync(join(dir, 'other'), `${'d'.repeat(64)}\n`);
    r = run('bash', [SCRIPT, 'run-c'], { env: { ...env, RECOVERY_GRPO_METRICS_TOKEN_FILE: join(dir, 'other') } });
    assert.notEqual(r.code, 0);
    assert.match(r.out, /holds another token than monitoring\/recovery-grpo-metrics-scrape/);
    assert.equal(existsSync(join(dir, 'ns', 'run-c', 'recovery-grpo-metrics')), false);

    // no secret on a command line: every Secret came from files
    const calls = readFileSync(join(dir, 'calls.log'), 'utf8');
    assert.ok(!calls.includes(token), 'the metrics token never in kubectl arguments');
    assert.match(calls, /-n monitoring create secret generic recovery-grpo-metrics-scrape --from-file=token=/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
