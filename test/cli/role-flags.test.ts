// Every role refuses a bad port, count or file flag when the command line is parsed: one line naming the flag and
// exit status CONFIG_EXIT_CODE, before it binds a port, dials NATS or writes anything (cli/flag-checks.ts). NATS and
// the orchestrator are unreachable addresses here, so a flag that got past the check would end otherwise (exit 1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, inParallel } from '../helpers/cli.ts';
import { CONFIG_EXIT_CODE } from '../../lib/config/setup-error.ts';
import { checkRoleFlags } from '../../cli/flag-checks.ts';

const dir = mkdtempSync(join(tmpdir(), 'role-flags-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const missing = join(dir, 'nonexistent.pem');
const pem = join(dir, 'x.pem');
writeFileSync(pem, '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n');
const metricsToken = join(dir, 'metrics.token');
writeFileSync(metricsToken, `${'7e'.repeat(32)}\n`, { mode: 0o600 });
const shortToken = join(dir, 'short.token');
writeFileSync(shortToken, 'abc\n');
const emptyToken = join(dir, 'empty.token');
writeFileSync(emptyToken, '');
// the token's digest in its place (scripts/k8s-secrets.sh gives the role pods this form), and a malformed one
const digestToken = join(dir, 'digest.token');
writeFileSync(digestToken, `sha256:${'7e'.repeat(32)}\n`);
const badDigest = join(dir, 'bad-digest.token');
writeFileSync(badDigest, `sha256:${'7e'.repeat(31)}\n`);

test('checkRoleFlags names the flag: ports, counts, readable files (inline PEM allowed for TLS)', () => {
  assert.equal(checkRoleFlags({ metricsPort: 0, maxBatch: 4, tlsCa: pem, tlsCert: '-----BEGIN CERTIFICATE-----' }), true);
  assert.throws(() => checkRoleFlags({ metricsPort: -5 }), /^Error: --metrics-port must be a port, an integer from 0 to 65535/);
  assert.throws(() => checkRoleFlags({ metricsPort: 70000 }), /--metrics-port/);
  assert.throws(() => checkRoleFlags({ metricsPort: Number.NaN }), /--metrics-port .*got NaN/);
  assert.throws(() => checkRoleFlags({ maxInFlight: 0 }), /--max-in-flight must be an integer >= 1, got 0/);
  assert.throws(() => checkRoleFlags({ authTokenFile: missing }), /--auth-token-file .*nonexistent\.pem: cannot read it \(ENOENT\)/);
  assert.throws(() => checkRoleFlags({ natsTlsKey: dir }), /--nats-tls-key .*: cannot read it \(EISDIR\)/);
  assert.throws(() => checkRoleFlags({ roleTokensFile: '' }), /--role-tokens-file: the file name is empty/);
  // an unauthenticated metrics port on a non-loopback address needs the opt-in (review25c)
  for (const host of ['127.0.0.1', '127.0.0.2', 'localhost', '::1']) assert.equal(checkRoleFlags({ metricsHost: host }), true, host);
  for (const host of ['0.0.0.0', '10.0.0.5', '::', 'orch.example']) {
    assert.throws(() => checkRoleFlags({ metricsHost: host }, {}), new RegExp(`^Error: --metrics-host ${host.replace(/\./g, '\\.')} is not a loopback address.*--metrics-network-protected`), host);
    assert.equal(checkRoleFlags({ metricsHost: host, metricsNetworkProtected: true }, {}), true, `${host} with the opt-in`);
    // ... or a token (round 26): the file, or the environment variable the roles read it from
    assert.equal(checkRoleFlags({ metricsHost: host, metricsTokenFile: metricsToken }, {}), true, `${host} with --metrics-token-file`);
    assert.equal(checkRoleFlags({ metricsHost: host, metricsTokenFile: digestToken }, {}), true, `${host} with a digest file`);
    assert.equal(checkRoleFlags({ metricsHost: host }, { RECOVERY_GRPO_METRICS_TOKEN: '7e'.repeat(32) }), true, `${host} with RECOVERY_GRPO_METRICS_TOKEN`);
    assert.throws(() => checkRoleFlags({ metricsHost: host }, { RECOVERY_GRPO_METRICS_TOKEN: '  ' }), /is not a loopback address/, `${host}: a blank variable is no token`);
  }
  // the token is read as the role reads it: an unreadable, empty or short one is refused on loopback too
  assert.throws(() => checkRoleFlags({ metricsTokenFile: join(dir, 'nope') }, {}), /^Error: --metrics-token-file .*nope: cannot read it \(ENOENT\)/);
  assert.throws(() => checkRoleFlags({ metricsTokenFile: emptyToken }, {}), /--metrics-token-file file .*empty\.token is empty/);
  assert.throws(() => checkRoleFlags({ metricsTokenFile: shortToken }, {}), /--metrics-token-file .*short\.token: the metrics token has 3 characters, fewer than 16/);
  assert.throws(() => checkRoleFlags({ metricsHost: '0.0.0.0' }, { RECOVERY_GRPO_METRICS_TOKEN: 'abc' }), /RECOVERY_GRPO_METRICS_TOKEN environment variable: the metrics token has 3 characters/);
  assert.throws(() => checkRoleFlags({ metricsTokenFile: badDigest }, {}), /^Error: --metrics-token-file .*bad-digest\.token: a digest of the metrics token is sha256: followed by 64 hex digits .*62 characters after sha256:$/);
});

test('a role with a bad port, file or TLS flag exits CONFIG_EXIT_CODE naming the flag, before anything starts', { timeout: 600_000 }, async () => {
  // 21 role processes, two at a time: ~95 s on 2 idle cores, past 180 s at load 15-20 (round 33); the limits only
  // catch a hang
  const orch = ['orchestrator', '--nats', 'nats://127.0.0.1:1'];
  const worker = (role: string) => [role, '--nats', 'nats://127.0.0.1:1', '--orchestrator', '127.0.0.1:1', '--metrics-port', '0'];
  const events = join(dir, 'no-such-dir', 'events.jsonl');
  const cases: Array<{ args: string[]; line: RegExp; env?: Record<string, string> }> = [
    { args: [...orch, '--metrics-port', '-5'], line: /^orchestrator: --metrics-port must be a port/ },
    { args: [...orch, '--tls-cert', missing, '--tls-key', pem], line: /^orchestrator: --tls-cert .*nonexistent\.pem: cannot read it \(ENOENT\)$/ },
    { args: [...orch, '--require-client-cert', '--tls-ca', pem], line: /^orchestrator: --require-client-cert needs --tls-cert and --tls-key .*plaintext$/ },
    { args: [...orch, '--tls-ca', pem], line: /^orchestrator: --tls-ca needs --tls-cert and --tls-key/ },
    { args: [...orch, '--linger-seconds', '3000000'], line: /^orchestrator: --linger-seconds must be a number of seconds from 0 to 2147483, got 3000000$/ },
    { args: [...orch, '--events', events], line: /^orchestrator: --events .*events\.jsonl: cannot open it for appending \(ENOENT\)$/ },
    { args: [...worker('rollout-worker'), '--tls-ca', missing], line: /^rollout-worker: --tls-ca .*: cannot read it \(ENOENT\)$/ },
    { args: [...worker('reward-worker'), '--auth-token-file', missing], line: /^reward-worker: --auth-token-file .*: cannot read it \(ENOENT\)$/ },
    { args: [...worker('learner'), '--nats-pass-file', missing, '--nats-user', 'u'], line: /^learner: --nats-pass-file .*: cannot read it \(ENOENT\)$/ },
    { args: [...worker('rollout-worker'), '--max-batch', '0'], line: /^rollout-worker: --max-batch must be an integer >= 1, got 0$/ },
    { args: [...worker('reward-worker').slice(0, -2), '--metrics-port', '99999'], line: /^reward-worker: --metrics-port must be a port/ },
    { args: [...orch, '--metrics-host', '0.0.0.0'], line: /^orchestrator: --metrics-host 0\.0\.0\.0 is not a loopback address.*Pass --metrics-token-file FILE .*or --metrics-network-protected/ },
    { args: [...worker('rollout-worker'), '--metrics-host', '10.1.2.3'], line: /^rollout-worker: --metrics-host 10\.1\.2\.3 is not a loopback address/ },
    { args: [...worker('learner'), '--metrics-host', '0.0.0.0'], line: /^learner: --metrics-host 0\.0\.0\.0 is not a loopback address.*Pass --metrics-token-file FILE/ },
    { args: [...worker('reward-worker'), '--metrics-host', '0.0.0.0'], line: /^reward-worker: --metrics-host 0\.0\.0\.0 is not a loopback address/ },
    { args: [...orch, '--metrics-host', '0.0.0.0', '--metrics-token-file', shortToken], line: /^orchestrator: --metrics-token-file .*short\.token: the metrics token has 3 characters, fewer than 16/ },
    { args: [...worker('rollout-worker'), '--metrics-token-file', emptyToken], line: /^rollout-worker: --metrics-token-file file .*empty\.token is empty$/ },
    { args: [...worker('learner'), '--metrics-host', '0.0.0.0', '--metrics-token-file', join(dir, 'nope')], line: /^learner: --metrics-token-file .*nope: cannot read it \(ENOENT\)$/ },
    { args: [...worker('learner'), '--metrics-host', '0.0.0.0', '--metrics-token-file', badDigest], line: /^learner: --metrics-token-file .*bad-digest\.token: a digest of the metrics token is sha256: followed by 64 hex digits/ },
    { args: [...worker('rollout-worker'), '--metrics-token-file', badDigest], line: /^rollout-worker: --metrics-token-file .*bad-digest\.token: a digest of the metrics token/ },
    { args: [...worker('reward-worker'), '--metrics-host', '0.0.0.0'], env: { RECOVERY_GRPO_METRICS_TOKEN: 'abc' }, line: /^reward-worker: the RECOVERY_GRPO_METRICS_TOKEN environment variable: the metrics token has 3 characters/ },
  ];
  const run = (args: string[], env: Record<string, string> = {}) => new Promise<{ status: number | null; stderr: string }>((done) => {
    const child = execFile(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 150_000, env: { ...process.env, RECOVERY_GRPO_METRICS_TOKEN: '', ...env } }, (_err, _stdout, stderr) => done({ status: child.exitCode, stderr }));
  });
  const results = await inParallel(cases.map((c) => () => run(c.args, c.env)), availableParallelism());
  for (const [i, c] of cases.entries()) {
    const r = results[i]!;
    const what = `recovery-grpo ${c.args.join(' ')}`;
    assert.equal(r.status, CONFIG_EXIT_CODE, `${what}: status ${r.status}\n${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${what}: one line, got\n${r.stderr}`);
    assert.match(lines[0]!, c.line, what);
  }
  assert.equal(existsSync(join(dir, 'no-such-dir')), false);
});
