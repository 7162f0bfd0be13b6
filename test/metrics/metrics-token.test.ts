// The metrics port's bearer token (lib/metrics startMetricsServer, --metrics-token-file; docs/security.md, "Metrics and
// health endpoints"): every path but /health refuses a request without the token, or with a wrong one, 401 with
// WWW-Authenticate: Bearer; /health answers probes without it, saying only ok or not. Over loopback HTTP: the server
// itself, the real orchestrator (NATS, its /api/*) and reward worker in this process, and a reward-worker process
// started by its command line with a non-loopback --metrics-host, which the token alone allows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMetrics, describeMetricsToken, METRICS_TOKEN_ENV, metricsTokenDigest, MIN_METRICS_TOKEN_LENGTH, readMetricsToken, startMetricsServer, type Health } from '../../lib/metrics/index.ts';
import { loadConfig } from '../../lib/config/index.ts';
import { runOrchestrator } from '../../orchestrator/main.ts';
import { runRewardWorker } from '../../reward-worker/index.ts';
import { silentLogger } from '../../lib/worker/index.ts';
import { resolveWorkerOptions } from '../../lib/worker/options.ts';
import { SetupError } from '../../lib/config/setup-error.ts';
import { freePort, startNatsServer } from '../helpers/nats.ts';
import { BIN } from '../helpers/cli.ts';
import { CONFIG_EXIT_CODE } from '../../lib/config/setup-error.ts';

const TOKEN = 'a3f1c0de'.repeat(8);
const dir = mkdtempSync(join(tmpdir(), 'metrics-token-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** 401 with WWW-Authenticate: Bearer, and none of the body `secret` is in it. */
async function assertRefused(url: string, headers: Record<string, string>, what: string, method = 'GET'): Promise<void> {
  const r = await fetch(url, { headers, method });
  assert.equal(r.status, 401, `${what}: ${method} ${url} answers 401`);
  assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer( |$)/, `${what}: WWW-Authenticate: Bearer`);
  const body = await r.text();
  assert.doesNotMatch(body, /recovery_grpo_|run_id/, `${what}: nothing of the run in the refusal`);
}

test('startMetricsServer with a token: /metrics, routes and unknown paths need it (missing, wrong, other scheme: 401); /health answers ok only without it', async () => {
  const m = createMetrics('run-tok', 'orchestrator', { processMetrics: false });
  m.get('policy_version').set(3);
  let state: Health = { ok: true, detail: { phase: 'grpo', workers: ['rollout-0'] } };
  const server = await startMetricsServer({
    port: 0, registry: m.registry, token: TOKEN, health: () => state,
    routes: { '/api/history': () => ({ contentType: 'application/json', body: '{"run_id":"run-tok"}' }), '/': () => ({ contentType: 'text/html', body: '<p>page</p>' }) },
    publicPaths: ['/', '/metrics', '/absent'], // a public path serves a route only: never /metrics, nor a path without a route
  });
  try {
    const wrongs: Array<[string, Record<string, string>]> = [
      ['no header', {}],
      ['a wrong token of the same length', bearer(TOKEN.replace(/^a/, 'b'))],
      ['a prefix of the token', bearer(TOKEN.slice(0, 32))],
      ['the token and more', bearer(`${TOKEN}x`)],
      ['the token under Basic', { authorization: `Basic ${TOKEN}` }],
      ['an empty bearer', { authorization: 'Bearer ' }],
    ];
    for (const path of ['/metrics', '/api/history', '/nope']) {
      for (const [what, headers] of wrongs) await assertRefused(`${server.url}${path}`, headers, what);
    }
    await assertRefused(`${server.url}/metrics`, {}, 'HEAD without the token', 'HEAD');
    await assertRefused(`${server.url}/absent`, {}, 'a public path without a route');
    const pub = await fetch(`${server.url}/`);
    assert.equal(pub.status, 200, 'a public route answers without the token');
    assert.equal(await pub.text(), '<p>page</p>');

    const ok = await fetch(`${server.url}/metrics`, { headers: bearer(TOKEN) });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /^recovery_grpo_policy_version\{run_id="run-tok",role="orchestrator"\} 3$/m);
    // the scheme is case-insensitive (RFC 9110), the token is not
    assert.equal((await fetch(`${server.url}/metrics`, { headers: { authorization: `bearer ${TOKEN}` } })).status, 200);
    assert.equal((await fetch(`${server.url}/metrics`, { headers: bearer(TOKEN.toUpperCase()) })).status, 401);
    assert.deepEqual(await (await fetch(`${server.url}/api/history`, { headers: bearer(TOKEN) })).json(), { run_id: 'run-tok' });
    assert.equal((await fetch(`${server.url}/nope`, { headers: bearer(TOKEN) })).status, 404, 'with the token an unknown path is 404');

    // /health: the kubelet's probe sends no token; it gets the status and ok, nothing of the run
    for (const path of ['/health', '/healthz']) {
      let h = await fetch(`${server.url}${path}`);
      assert.equal(h.status, 200);
      assert.deepEqual(await h.json(), { ok: true }, `${path} without the token: ok only`);
      h = await fetch(`${server.url}${path}`, { headers: bearer(TOKEN) });
      assert.deepEqual(await h.json(), { ok: true, detail: { phase: 'grpo', workers: ['rollout-0'] } }, `${path} with the token: the detail`);
    }
    state = { ok: false, detail: 'learner stream closed' };
    const down = await fetch(`${server.url}/health`, { headers: bearer('wrong-but-long-enough-token') });
    assert.equal(down.status, 503);
    assert.deepEqual(await down.json(), { ok: false }, 'a wrong token is no token: ok only');
  } finally {
    await server.close();
  }
  // without a token nothing changed: everything open, as on loopback before
  const open = await startMetricsServer({ port: 0, registry: m.registry, health: () => ({ ok: true, detail: { v: 1 } }) });
  try {
    assert.equal((await fetch(`${open.url}/metrics`)).status, 200);
    assert.deepEqual(await (await fetch(`${open.url}/health`)).json(), { ok: true, detail: { v: 1 } });
  } finally {
    await open.close();
  }
  await assert.rejects(startMetricsServer({ port: 0, registry: m.registry, token: 'short' }), /token is shorter than 16 characters/);
});

test('readMetricsToken: the file (trimmed), else the environment; empty, unreadable or short refused naming the source, never the token', () => {
  const file = join(dir, 'metrics-token');
  writeFileSync(file, `${TOKEN}\n`);
  assert.equal(readMetricsToken(undefined, file, '--metrics-token-file', {}), TOKEN);
  assert.equal(readMetricsToken(undefined, undefined, '--metrics-token-file', { [METRICS_TOKEN_ENV]: ` ${TOKEN} ` }), TOKEN);
  assert.equal(readMetricsToken(undefined, file, '--metrics-token-file', { [METRICS_TOKEN_ENV]: 'other'.repeat(5) }), TOKEN, 'the file wins');
  assert.equal(readMetricsToken(undefined, undefined, '--metrics-token-file', { [METRICS_TOKEN_ENV]: '' }), undefined);
  const short = join(dir, 'short');
  writeFileSync(short, 'abc123\n');
  assert.throws(() => readMetricsToken(undefined, short, '--metrics-token-file', {}), (e: Error) => /--metrics-token-file .*short: the metrics token has 6 characters, fewer than 16/.test(e.message) && !e.message.includes('abc123'));
  assert.throws(() => readMetricsToken(undefined, undefined, '--metrics-token-file', { [METRICS_TOKEN_ENV]: 'abc' }), /RECOVERY_GRPO_METRICS_TOKEN environment variable: the metrics token has 3 characters/);
  assert.throws(() => readMetricsToken(undefined, undefined, '--metrics-token-file', { [METRICS_TOKEN_ENV]: 'two words of a long token' }), /the metrics token contains white space/);
  const empty = join(dir, 'empty');
  writeFileSync(empty, '\n');
  assert.throws(() => readMetricsToken(undefined, empty, '--metrics-token-file', {}), /--metrics-token-file file .*empty is empty/);
  assert.throws(() => readMetricsToken(undefined, join(dir, 'missing'), '--metrics-token-file', {}), /cannot read it \(ENOENT\)/);
  assert.equal(MIN_METRICS_TOKEN_LENGTH, 16);
  // a role's options (the library's door): the same reading, refused as a SetupError (exit 78, no restart)
  assert.equal(resolveWorkerOptions('reward', { metricsTokenFile: file, logger: silentLogger }, {}).metricsToken, TOKEN);
  assert.equal(resolveWorkerOptions('reward', { logger: silentLogger }, { [METRICS_TOKEN_ENV]: TOKEN }).metricsToken, TOKEN);
  assert.equal(resolveWorkerOptions('reward', { logger: silentLogger }, {}).metricsToken, undefined);
  assert.throws(() => resolveWorkerOptions('learner', { metricsToken: 'short', logger: silentLogger }, {}), (e: Error) => e instanceof SetupError && /worker options\.metricsToken: the metrics token has 5 characters/.test(e.message));
});

// The digest form (scripts/k8s-secrets.sh gives it to the role pods): the file holds sha256:<hex of sha256(token)>,
// computed here independently of the library (node:crypto on the token's bytes), and the request still presents the token.
const DIGEST = `sha256:${createHash('sha256').update(Buffer.from(TOKEN, 'utf8')).digest('hex')}`;

test('a digest file (sha256:<64 hex>): the server serves the token whose sha256 it is, and refuses a wrong token, the digest itself and its hex', async () => {
  assert.equal(metricsTokenDigest(TOKEN), DIGEST, 'the library writes the same digest');
  const file = join(dir, 'metrics-token-digest');
  writeFileSync(file, `${DIGEST}\n`);
  const held = readMetricsToken(undefined, file, '--metrics-token-file', {});
  assert.equal(held, DIGEST, 'read as given');
  assert.equal(readMetricsToken(undefined, undefined, '--metrics-token-file', { [METRICS_TOKEN_ENV]: DIGEST }), DIGEST, 'also from the environment');
  const m = createMetrics('run-dig', 'rollout', { processMetrics: false });
  m.get('policy_version').set(5);
  const server = await startMetricsServer({ port: 0, registry: m.registry, token: held!, health: () => ({ ok: true, detail: { worker_id: 'rollout-d' } }) });
  try {
    const hex = DIGEST.slice('sha256:'.length);
    const wrongs: Array<[string, Record<string, string>]> = [
      ['no header', {}],
      ['a wrong token of the same length', bearer(TOKEN.replace(/^a/, 'b'))],
      ['the digest line itself', bearer(DIGEST)],
      ['the digest\'s hex', bearer(hex)],
      ['the token in upper case', bearer(TOKEN.toUpperCase())],
    ];
    for (const [what, headers] of wrongs) await assertRefused(`${server.url}/metrics`, headers, `digest file, ${what}`);
    const ok = await fetch(`${server.url}/metrics`, { headers: bearer(TOKEN) });
    assert.equal(ok.status, 200, 'the token whose digest the file holds');
    assert.match(await ok.text(), /^recovery_grpo_policy_version\{run_id="run-dig",role="rollout"\} 5$/m);
    assert.deepEqual(await (await fetch(`${server.url}/health`)).json(), { ok: true }, '/health without the token: ok only');
    assert.deepEqual(await (await fetch(`${server.url}/health`, { headers: bearer(DIGEST) })).json(), { ok: true }, '/health with the digest: ok only');
    assert.deepEqual(await (await fetch(`${server.url}/health`, { headers: bearer(TOKEN) })).json(), { ok: true, detail: { worker_id: 'rollout-d' } });
  } finally {
    await server.close();
  }
  // the prefix and the hex in upper case are the same digest
  const upper = await startMetricsServer({ port: 0, registry: m.registry, token: DIGEST.toUpperCase() });
  try {
    assert.equal((await fetch(`${upper.url}/metrics`, { headers: bearer(TOKEN) })).status, 200);
    await assertRefused(`${upper.url}/metrics`, bearer(TOKEN.slice(1)), 'upper-case digest, a wrong token');
  } finally {
    await upper.close();
  }
});

test('a malformed sha256: value (wrong length, not hex) is refused naming the file, never the value; the CLI exits 78', { timeout: 120_000 }, async () => {
  const hex = DIGEST.slice('sha256:'.length);
  const cases: Array<[string, string, RegExp]> = [
    ['short', `sha256:${hex.slice(0, 63)}`, /63 characters after sha256:/],
    ['long', `sha256:${hex}0`, /65 characters after sha256:/],
    ['empty', 'sha256:', /0 characters after sha256:/],
    ['not-hex', `sha256:${hex.slice(0, 63)}g`, /a character that is not a hex digit/],
    ['upper-prefix-short', `SHA256:${hex.slice(2)}`, /62 characters after sha256:/],
  ];
  for (const [name, value, why] of cases) {
    const file = join(dir, `digest-${name}`);
    writeFileSync(file, `${value}\n`);
    assert.throws(() => readMetricsToken(undefined, file, '--metrics-token-file', {}), (e: Error) => {
      assert.ok(e.message.startsWith(`--metrics-token-file ${file}: a digest of the metrics token is sha256: followed by 64 hex digits`), `${name}: ${e.message}`);
      assert.match(e.message, why, name);
      if (value.length > 'sha256:'.length) assert.ok(!e.message.includes(value.slice(7)), `${name}: the value is not in the message`);
      return true;
    });
  }
  assert.throws(() => readMetricsToken(undefined, undefined, '--metrics-token-file', { [METRICS_TOKEN_ENV]: `sha256:${hex.slice(1)}` }), /^Error: the RECOVERY_GRPO_METRICS_TOKEN environment variable: a digest of the metrics token/);
  // the library's door: a SetupError; the server itself refuses it too
  assert.throws(() => resolveWorkerOptions('rollout', { metricsTokenFile: join(dir, 'digest-short'), logger: silentLogger }, {}), (e: Error) => e instanceof SetupError && /digest-short: a digest of the metrics token/.test(e.message));
  const registry = createMetrics('r', 'reward', { processMetrics: false }).registry;
  await assert.rejects(startMetricsServer({ port: 0, registry, token: `sha256:${hex.slice(1)}` }), /metrics server: the token: a digest .*63 characters after sha256:/);
  await assert.rejects(startMetricsServer({ port: 0, registry, token: 'sha256:ab' }), /metrics server: the token: a digest .*2 characters after sha256:/);
  // the command line: exit 78 (a configuration error, no restart) naming the file, before anything is dialled
  for (const role of ['reward-worker', 'orchestrator']) {
    const file = join(dir, 'digest-not-hex');
    const r = spawnSync(process.execPath, [BIN, role, ...(role === 'orchestrator' ? [] : ['--orchestrator', '127.0.0.1:1']), '--nats', 'nats://127.0.0.1:1', '--metrics-port', '0', '--metrics-token-file', file], {
      encoding: 'utf8', env: { ...process.env, [METRICS_TOKEN_ENV]: '' }, timeout: 60_000,
    });
    assert.equal(r.status, CONFIG_EXIT_CODE, `${role}: exit ${CONFIG_EXIT_CODE}\n${r.stderr}`);
    assert.ok(r.stderr.includes(`--metrics-token-file ${file}: a digest of the metrics token is sha256: followed by 64 hex digits`), `${role} names the file:\n${r.stderr}`);
  }
});

test('the real orchestrator and reward worker: /metrics and the orchestrator\'s /api/* refuse without the token and serve with it; /health says ok only', { timeout: 120_000 }, async () => {
  const nats = await startNatsServer();
  const config = loadConfig(undefined, [
    'run.id=tokrun-7', 'data.source.kind=procedural', 'data.size=16', 'data.source.count=16', 'model.width=4', 'model.depth=1',
    'sft.batchSize=4', 'sft.steps=1000', 'grpo.groupSize=4', 'grpo.samplesPerBatch=2', 'grpo.steps=1',
  ]);
  const orch = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: nats.url, metricsPort: 0, metricsToken: TOKEN, log: () => undefined });
  const worker = await runRewardWorker({ orchestrator: orch.address, nats: nats.url, metricsPort: 0, metricsToken: TOKEN, workerId: 'reward-tok', logger: silentLogger });
  try {
    await worker.ready;
    for (const path of ['/metrics', '/api/history', '/api/eval-grid.png']) {
      await assertRefused(`${orch.metricsUrl}${path}`, {}, `orchestrator ${path} without the token`);
      await assertRefused(`${orch.metricsUrl}${path}`, bearer(`${TOKEN.slice(1)}0`), `orchestrator ${path} with a wrong token`);
    }
    // the page itself is open (a browser cannot send the header; it holds nothing of the run and sends the token,
    // from /#token=..., for its data)
    const page = await fetch(`${orch.metricsUrl}/`);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /^<!doctype html>/);
    assert.doesNotMatch(html, /tokrun-7|reward-tok/, 'the page holds nothing of the run');
    await assertRefused(`${worker.metricsUrl}/metrics`, {}, 'reward worker /metrics without the token');
    await assertRefused(`${worker.metricsUrl}/metrics`, bearer('f'.repeat(64)), 'reward worker /metrics with a wrong token');

    const om = await fetch(`${orch.metricsUrl}/metrics`, { headers: bearer(TOKEN) });
    assert.equal(om.status, 200);
    assert.match(await om.text(), /^recovery_grpo_workers_connected\{worker_role="reward",run_id="tokrun-7",role="orchestrator"\} 1$/m);
    const history = await fetch(`${orch.metricsUrl}/api/history`, { headers: bearer(TOKEN) });
    assert.equal(history.status, 200);
    assert.ok(Array.isArray(((await history.json()) as { workers: unknown[] }).workers));
    const wm = await fetch(`${worker.metricsUrl}/metrics`, { headers: bearer(TOKEN) });
    assert.equal(wm.status, 200);
    assert.match(await wm.text(), /run_id="tokrun-7",role="reward"/);

    // /health: ok without the token, the run's state with it (the orchestrator's, as its detail since round 26)
    assert.deepEqual(await (await fetch(`${orch.metricsUrl}/health`)).json(), { ok: true });
    const od = (await (await fetch(`${orch.metricsUrl}/health`, { headers: bearer(TOKEN) })).json()) as { ok: boolean; detail: { phase: string; workers: Array<{ worker_id: string }> } };
    assert.equal(od.ok, true);
    assert.equal(typeof od.detail.phase, 'string');
    assert.deepEqual(od.detail.workers.map((w) => w.worker_id), ['reward-tok']);
    const wh = await fetch(`${worker.metricsUrl}/health`);
    assert.equal(wh.status, 200);
    assert.deepEqual(await wh.json(), { ok: true });
    const wd = (await (await fetch(`${worker.metricsUrl}/health`, { headers: bearer(TOKEN) })).json()) as { detail: { worker_id: string; run_id: string } };
    assert.equal(wd.detail.worker_id, 'reward-tok');
    assert.equal(wd.detail.run_id, 'tokrun-7');
  } finally {
    await worker.stop();
    await orch.stop();
    await nats.stop();
  }
});

test('reward-worker --metrics-host 0.0.0.0 --metrics-token-file (holding the digest, as a pod\'s Secret does): accepted without --metrics-network-protected, and its port takes the token', { timeout: 60_000 }, async () => {
  const file = join(dir, 'cli-token');
  writeFileSync(file, `${DIGEST}\n`, { mode: 0o600 });
  const port = await freePort();
  // the orchestrator and NATS are unreachable: the worker serves its port and keeps redialling until stopped
  const child = spawn(process.execPath, [BIN, 'reward-worker', '--orchestrator', '127.0.0.1:1', '--nats', 'nats://127.0.0.1:1',
    '--metrics-host', '0.0.0.0', '--metrics-port', String(port), '--metrics-token-file', file, '--worker-id', 'cli-tok'], {
    stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, [METRICS_TOKEN_ENV]: '' },
  });
  let stderr = '';
  let saidDigest = false; // the start-up line (review26d F5): "(with a token's digest...)", not "(with a token)"
  child.stderr!.on('data', (d) => {
    stderr = (stderr + d).slice(-4000);
    saidDigest ||= /metrics and health on \S+ \(with a token's digest: a scraper presents the token itself\)/.test(String(d));
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 45_000;
    for (;;) {
      if (child.exitCode !== null) assert.fail(`reward-worker exited ${child.exitCode}:\n${stderr}`);
      const h = await fetch(`${url}/health`).catch(() => undefined);
      if (h) {
        assert.equal(h.status, 503, 'not connected to an orchestrator');
        assert.deepEqual(await h.json(), { ok: false }, 'no detail without the token');
        break;
      }
      if (Date.now() > deadline) assert.fail(`no /health within 45 s:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await assertRefused(`${url}/metrics`, {}, 'without the token');
    await assertRefused(`${url}/metrics`, bearer(TOKEN.split('').reverse().join('')), 'with a wrong token');
    await assertRefused(`${url}/metrics`, bearer(DIGEST), 'with the digest its file holds');
    assert.equal((await fetch(`${url}/metrics`, { headers: bearer(TOKEN) })).status, 200);
    const d = (await (await fetch(`${url}/health`, { headers: bearer(TOKEN) })).json()) as { detail: { worker_id: string } };
    assert.equal(d.detail.worker_id, 'cli-tok');
    assert.doesNotMatch(stderr, new RegExp(TOKEN), 'the token is never logged');
    assert.ok(saidDigest, `the start-up line says the port holds a token's digest:\n${stderr}`);
  } finally {
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }
});

test("describeMetricsToken: the start-up line says \"(with a token's digest...)\" for a sha256: value (review26d F5), \"(with a token)\" for a token", () => {
  assert.equal(describeMetricsToken(undefined), '');
  assert.equal(describeMetricsToken(TOKEN), ' (with a token)');
  assert.equal(describeMetricsToken(DIGEST), " (with a token's digest: a scraper presents the token itself)");
  assert.equal(describeMetricsToken(`SHA256:${DIGEST.slice(7)}\n`), " (with a token's digest: a scraper presents the token itself)");
});
