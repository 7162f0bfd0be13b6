// README "Running it distributed": the recipe users copy. Every flag it gives a role exists (the role's --help), and
// it deploys as docs/security.md asks: per-role tokens (no shared --auth-token-file on the orchestrator), role
// certificates for gRPC and NATS, signed checkpoints. Before round 24 it gave every role one shared token and nothing
// else, so any worker could pose as the learner.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { opensslAvailable } from '../helpers/certs.ts';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ROLES = ['orchestrator', 'learner', 'rollout-worker', 'reward-worker'] as const;
type Role = (typeof ROLES)[number];

/** The section's bash code blocks, one after the other. */
function sectionCode(): string {
  const readme = readFileSync(`${ROOT}README.md`, 'utf8');
  const start = readme.indexOf('\n## Running it distributed\n');
  assert.ok(start >= 0, 'README has the section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end);
  return [...section.matchAll(/```(?:bash|sh)\n([\s\S]*?)```/g)].map((m) => m[1]!).join('\n');
}

/** The `recovery-grpo <role> ...` commands of the section's code blocks, continuation lines joined: role -> flags. */
function recipe(): Map<Role, Map<string, string | true>> {
  const code = sectionCode().replace(/\\\n\s*/g, ' ');
  const out = new Map<Role, Map<string, string | true>>();
  for (const line of code.split('\n')) {
    const m = /^recovery-grpo\s+(\S+)\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const role = m[1] as Role;
    assert.ok(ROLES.includes(role), `README runs recovery-grpo ${m[1]}`);
    const words = m[2]!.replace(/#.*$/, '').trim().split(/\s+/);
    const flags = new Map<string, string | true>();
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      assert.match(w, /^--/, `${role}: ${w} is not a flag`);
      const [name, eq] = w.slice(2).split('=', 2) as [string, string | undefined];
      if (eq !== undefined) flags.set(name, eq);
      else if (words[i + 1] !== undefined && !words[i + 1]!.startsWith('--')) flags.set(name, words[++i]!);
      else flags.set(name, true);
    }
    out.set(role, flags);
  }
  return out;
}

test('README distributed recipe: every role, per-role credentials, no shared token', () => {
  const r = recipe();
  assert.deepEqual([...r.keys()].sort(), [...ROLES].sort(), 'a command for every role');
  const orch = r.get('orchestrator')!;
  assert.ok(orch.has('role-tokens-file'), 'the orchestrator gets --role-tokens-file');
  assert.ok(!orch.has('auth-token-file'), 'no shared token on the orchestrator (it grants every role)');
  for (const flag of ['tls-cert', 'tls-key', 'tls-ca', 'require-client-cert', 'checkpoint-pubkey-file']) assert.ok(orch.has(flag), `orchestrator --${flag}`);
  const tokens = new Set<string | true>();
  for (const role of ['learner', 'rollout-worker', 'reward-worker'] as const) {
    const f = r.get(role)!;
    for (const flag of ['auth-token-file', 'tls-ca', 'tls-cert', 'tls-key']) assert.ok(f.has(flag), `${role} --${flag}`);
    tokens.add(f.get('auth-token-file')!);
  }
  assert.equal(tokens.size, 3, 'each worker its own token file');
  assert.ok(r.get('learner')!.has('checkpoint-key-file'), 'the learner signs checkpoints');
  assert.ok(r.get('rollout-worker')!.has('checkpoint-pubkey-file'), 'rollout workers verify checkpoints');
  // NATS: every role connects with its own certificate
  const natsCerts = new Set<string | true>();
  for (const role of ROLES) {
    const f = r.get(role)!;
    for (const flag of ['nats', 'nats-tls-ca', 'nats-tls-cert', 'nats-tls-key']) assert.ok(f.has(flag), `${role} --${flag}`);
    natsCerts.add(f.get('nats-tls-cert')!);
  }
  assert.equal(natsCerts.size, ROLES.length, 'each role its own NATS certificate');
});

test('README distributed recipe: every flag exists in its role\'s --help', { timeout: 120_000 }, () => {
  for (const [role, flags] of recipe()) {
    const help = execFileSync(process.execPath, [`${ROOT}bin/recovery-grpo.mjs`, role, '--help'], { encoding: 'utf8', cwd: ROOT });
    for (const flag of flags.keys()) assert.match(help, new RegExp(`^\\s+--${flag}(?=\\s)`, 'm'), `recovery-grpo ${role} --${flag}: not in its --help`);
  }
});

test('README distributed recipe: its openssl lines make the CA and certificates the roles and NATS need', { timeout: 60_000 }, (t) => {
  if (!opensslAvailable()) return t.skip('openssl not found');
  // the lines from "# TLS:" up to the NATS part, run as written (review24f: the README only pointed elsewhere)
  const code = sectionCode();
  const from = code.indexOf('# TLS:');
  const to = code.indexOf('# NATS:', from);
  assert.ok(from >= 0 && to > from, 'the recipe has a TLS part before its NATS part');
  const dir = mkdtempSync(join(tmpdir(), 'readme-tls-'));
  try {
    execFileSync('bash', ['-euc', code.slice(from, to)], { cwd: dir, stdio: 'pipe' });
    const ext = (name: string) => execFileSync('openssl', ['x509', '-in', `${name}.crt`, '-noout', '-ext', 'subjectAltName,extendedKeyUsage'], { cwd: dir, encoding: 'utf8' });
    const verify = (purpose: string, name: string) => execFileSync('openssl', ['verify', '-CAfile', 'ca.crt', '-purpose', purpose, `${name}.crt`], { cwd: dir, encoding: 'utf8' });
    assert.match(ext('nats'), /DNS:nats[\s\S]*TLS Web Server Authentication/);
    assert.match(verify('sslserver', 'nats'), /OK/);
    const orch = ext('orchestrator');
    assert.match(orch, /URI:spiffe:\/\/recovery-grpo\/role\/orchestrator, DNS:orch/, 'the orchestrator: its role and the name workers dial');
    assert.match(orch, /TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(verify('sslserver', 'orchestrator'), /OK/);
    for (const role of ['orchestrator', 'learner', 'rollout', 'reward']) {
      assert.match(ext(role), new RegExp(`URI:spiffe://recovery-grpo/role/${role}\\b`), `${role}.crt names its role`);
      assert.match(verify('sslclient', role), /OK/, `${role}.crt is a client certificate of the CA`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
