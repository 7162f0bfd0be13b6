// scripts/k8s-secrets.sh against a cluster, for the metrics token (round 26): one token serves every run the
// Prometheus scrapes, so the script reads it from the monitoring namespace's Secret recovery-grpo-metrics-scrape (making
// it the first time) and gives each run namespace its digest, sha256:<hex> (no role pod holds the token), also one
// whose other Secrets exist (the upgrade from round 25) or whose Secret holds the token itself (the upgrade within 26).
// kubectl is a stand-in here (no cluster on this machine): a shell script keeping each Secret as files under a folder,
// answering exactly the calls the script makes, and logging every argument list (no secret may appear in one).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './tools.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCRIPT = join(ROOT, 'scripts/k8s-secrets.sh');

/** What a role's token file holds: sha256:<hex> of the token's bytes (lib/metrics readMetricsToken), computed here. */
const digestOf = (token: string) => `sha256:${createHash('sha256').update(Buffer.from(token, 'utf8')).digest('hex')}`;

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

test('k8s-secrets.sh with kubectl: one metrics token, made once in the monitoring namespace; every run namespace holds its digest, also an existing one', { timeout: 120_000 }, () => {
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
    const digest = digestOf(token);
    assert.equal(secret('run-a', 'recovery-grpo-metrics'), digest, 'run-a holds the digest of the token Prometheus presents');
    assert.ok(!secret('run-a', 'recovery-grpo-metrics')!.includes(token), 'not the token');
    assert.notEqual(secret('run-a', 'recovery-grpo-auth'), token, 'not the gRPC token');
    assert.ok(secret('run-a', 'recovery-grpo-tls-nats', 'ca.crt'), 'and the other Secrets');

    // a second run, later: the same token, read from the monitoring namespace
    r = run('bash', [SCRIPT, 'run-b'], { env });
    assert.equal(r.code, 0, r.out);
    assert.equal(secret('monitoring', 'recovery-grpo-metrics-scrape'), token, 'the scrape Secret is kept');
    assert.equal(secret('run-b', 'recovery-grpo-metrics'), digest);
    assert.doesNotMatch(r.out, /run-a|secret recovery-grpo-metrics-scrape created/);

    // the upgrade from round 25: a namespace with its Secrets but no metrics token gets it, the rest is kept
    rmSync(join(dir, 'ns', 'run-a', 'recovery-grpo-metrics'), { recursive: true });
    const ca = secret('run-a', 'recovery-grpo-tls-nats', 'ca.crt');
    r = run('bash', [SCRIPT, 'run-a'], { env });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /run-a: secret recovery-grpo-metrics created/);
    assert.match(r.out, /run-a: secrets exist \(kept/);
    assert.equal(secret('run-a', 'recovery-grpo-metrics'), digest);
    assert.equal(secret('run-a', 'recovery-grpo-tls-nats', 'ca.crt'), ca, 'the certificates are kept');

    // the upgrade within round 26: a namespace whose Secret holds the token itself gets the digest instead
    writeFileSync(join(dir, 'ns', 'run-a', 'recovery-grpo-metrics', 'token'), token);
    r = run('bash', [SCRIPT, 'run-a'], { env });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /run-a: secret recovery-grpo-metrics now holds the metrics token's digest, not the token \(restart the run's pods/);
    assert.equal(secret('run-a', 'recovery-grpo-metrics'), digest, 'the token replaced by its digest');
    assert.equal(secret('run-a', 'recovery-grpo-tls-nats', 'ca.crt'), ca, 'the certificates are kept');
    // and once it holds the digest, a re-run leaves it alone
    r = run('bash', [SCRIPT, 'run-a'], { env });
    assert.equal(r.code, 0, r.out);
    assert.doesNotMatch(r.out, /secret recovery-grpo-metrics (created|now holds)/);

    // --rotate replaces the run's credentials, not the token every run shares
    const grpc = secret('run-b', 'recovery-grpo-auth');
    r = run('bash', [SCRIPT, '--rotate', 'run-b'], { env });
    assert.equal(r.code, 0, r.out);
    assert.notEqual(secret('run-b', 'recovery-grpo-auth'), grpc, 'the gRPC token is new');
    assert.equal(secret('run-b', 'recovery-grpo-metrics'), digest, 'the digest of the shared metrics token');

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

    // replacing the token (docs/kubernetes.md): delete the scrape Secret, run the script for each run namespace
    rmSync(join(dir, 'ns', 'monitoring', 'recovery-grpo-metrics-scrape'), { recursive: true });
    r = run('bash', [SCRIPT, 'run-a', 'run-b'], { env });
    assert.equal(r.code, 0, r.out);
    const fresh = secret('monitoring', 'recovery-grpo-metrics-scrape')!;
    assert.match(fresh, /^[0-9a-f]{64}$/);
    assert.notEqual(fresh, token, 'a new token');
    for (const ns of ['run-a', 'run-b']) assert.equal(secret(ns, 'recovery-grpo-metrics'), digestOf(fresh), `${ns}: the new token's digest`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('k8s-secrets.sh --ca-issuer keeps the CA key for the per-pod Issuer and drops the shared token and role-wide certificates; without it the CA key goes', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'rg-fake-kube-ca-'));
  try {
    writeFileSync(join(dir, 'kubectl'), FAKE_KUBECTL);
    chmodSync(join(dir, 'kubectl'), 0o755);
    const env = { ...process.env, PATH: `${dir}:${process.env.PATH}`, FAKE_KUBE: dir, RECOVERY_GRPO_METRICS_TOKEN_FILE: '' };
    const secret = (ns: string, name: string, key: string) => {
      const f = join(dir, 'ns', ns, name, key);
      return existsSync(f) ? readFileSync(f, 'utf8') : undefined;
    };
    const has = (ns: string, name: string) => existsSync(join(dir, 'ns', ns, name));
    const WORKER_TLS = ['learner', 'rollout', 'reward'].map((c) => `recovery-grpo-tls-${c}`);

    // a namespace made before (no CA key kept): --ca-issuer cannot make an Issuer's Secret there without a new CA
    let r = run('bash', [SCRIPT, 'run-a'], { env });
    assert.equal(r.code, 0, r.out);
    assert.ok(has('run-a', 'recovery-grpo-auth') && WORKER_TLS.every((n) => has('run-a', n)) && !has('run-a', 'recovery-grpo-ca'));
    r = run('bash', [SCRIPT, '--ca-issuer', 'run-a'], { env });
    assert.notEqual(r.code, 0);
    assert.match(r.out, /run-a: its Secrets were made without --ca-issuer, so its CA's key was discarded .* rerun with --rotate --ca-issuer run-a/);
    assert.equal(has('run-a', 'recovery-grpo-ca'), false);

    // --rotate --ca-issuer: a new CA whose key the Issuer's Secret holds, the NATS and orchestrator certificates it
    // signed; the shared token and the role-wide certificates deleted
    r = run('bash', [SCRIPT, '--rotate', '--ca-issuer', 'run-a'], { env });
    assert.equal(r.code, 0, r.out);
    const caCrt = secret('run-a', 'recovery-grpo-ca', 'tls.crt')!;
    assert.match(caCrt, /BEGIN CERTIFICATE/);
    assert.match(secret('run-a', 'recovery-grpo-ca', 'tls.key')!, /BEGIN PRIVATE KEY/);
    assert.equal(secret('run-a', 'recovery-grpo-tls-nats', 'ca.crt'), caCrt, 'NATS trusts the Issuer\'s CA');
    assert.equal(secret('run-a', 'recovery-grpo-tls-orchestrator', 'ca.crt'), caCrt, 'so does the orchestrator');
    for (const n of ['recovery-grpo-auth', ...WORKER_TLS]) {
      assert.equal(has('run-a', n), false, `${n} deleted`);
      assert.match(r.out, new RegExp(`run-a: secret ${n} deleted \\(not used with --ca-issuer\\)`));
    }
    // and kept on a re-run
    r = run('bash', [SCRIPT, '--ca-issuer', 'run-a'], { env });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /run-a: secrets exist \(kept/);
    assert.equal(secret('run-a', 'recovery-grpo-ca', 'tls.crt'), caCrt);

    // the CA signs leaves only (pathlen:0): a CA certificate it signed for a pod cannot mint certificates (review30 F3)
    writeFileSync(join(dir, 'ca.crt'), caCrt);
    assert.match(run('openssl', ['x509', '-noout', '-ext', 'basicConstraints', '-in', join(dir, 'ca.crt')]).out, /critical\s+CA:TRUE, pathlen:0/);

    // without --ca-issuer (a rotation that forgot it, or a plain create): refused, naming the flags, nothing changed
    // (review30 F4: the rotation used to delete the Issuer's key and hand the workers the shared token again)
    const listing = () => readdirSync(join(dir, 'ns', 'run-a')).sort().map((n) => `${n}: ${readdirSync(join(dir, 'ns', 'run-a', n)).sort().map((k) => secret('run-a', n, k)).join()}`);
    const before = listing();
    for (const args of [['--rotate', 'run-a'], ['run-a']]) {
      r = run('bash', [SCRIPT, ...args], { env });
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.out}`);
      assert.match(r.out, /k8s-secrets: run-a: holds recovery-grpo-ca, the CA key of the per-pod certificates \(made with --ca-issuer\): rerun with --ca-issuer .* --rotate --drop-ca-issuer run-a/);
      assert.deepEqual(listing(), before, `${args.join(' ')}: nothing changed`);
    }
    assert.equal(run('bash', [SCRIPT, '--drop-ca-issuer', 'run-a'], { env }).code, 2, '--drop-ca-issuer needs --rotate');
    assert.equal(run('bash', [SCRIPT, '--rotate', '--drop-ca-issuer', '--ca-issuer', 'run-a'], { env }).code, 2, 'contradicting flags');
    assert.deepEqual(listing(), before);

    // back, explicitly: the CA key is deleted, the shared token and role certificates made again
    r = run('bash', [SCRIPT, '--rotate', '--drop-ca-issuer', 'run-a'], { env });
    assert.equal(r.code, 0, r.out);
    assert.equal(has('run-a', 'recovery-grpo-ca'), false);
    assert.match(r.out, /run-a: secret recovery-grpo-ca deleted \(not used without --ca-issuer\)/);
    assert.ok(has('run-a', 'recovery-grpo-auth') && WORKER_TLS.every((n) => has('run-a', n)));
    assert.doesNotMatch(readFileSync(join(dir, 'calls.log'), 'utf8'), /BEGIN/, 'no key on a command line');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
