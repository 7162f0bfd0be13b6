// The shared worker runtime with a stub role (no models): options at the edge, token auth, /health before and
// after the orchestrator appears, heartbeats listing held tasks, fatal Welcomes, Shutdown with a grace period,
// and the real CLI stopping cleanly on SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, natsForFile } from '../helpers/nats.ts';
import type { OrchestratorMessage__Output } from '../../lib/transport/index.ts';
import {
  resolveWorkerOptions,
  silentLogger,
  startWorker,
  type RoleContext,
  type WorkerOptions,
  type WorkerRoleImpl,
} from '../../lib/worker/index.ts';
import { dialAddress, workerOptionsFromArgs } from '../../cli/worker-options.ts';
import { startFakeOrchestrator, tinyConfig, waitFor } from './helpers.ts';

const shared = natsForFile();

/** Holds score tasks until the test answers them; drains when none is held. */
class StubRole implements WorkerRoleImpl {
  readonly name = 'reward' as const;
  readonly taskKind = 'score_task' as const;
  ctx: RoleContext | undefined;
  held = new Map<string, OrchestratorMessage__Output>();
  inits = 0;
  closed = false;
  private idle: Array<() => void> = [];
  capabilities() {
    return { device: 'cpu', max_batch: 1, max_in_flight: 8, labels: {} };
  }
  hello() {
    return {};
  }
  policyVersion() {
    return undefined;
  }
  async init(ctx: RoleContext) {
    this.ctx = ctx;
    this.inits++;
  }
  handle(msg: OrchestratorMessage__Output) {
    this.held.set(msg.score_task!.task_id, msg);
  }
  cancel(id: string) {
    this.held.delete(id);
  }
  activeTaskIds() {
    return [...this.held.keys()];
  }
  async answer(id: string) {
    const t = this.held.get(id)!.score_task!;
    await this.ctx!.send({ score_result: { task_id: id, attempt: t.attempt, components: [{ ssim: 0.5, clip_cos: 0.5 }], clip_encoder: 'stub' } });
    this.held.delete(id);
    if (this.held.size === 0) for (const r of this.idle.splice(0)) r();
  }
  async drain() {
    if (this.held.size) await new Promise<void>((r) => this.idle.push(r));
  }
  async close() {
    this.closed = true;
  }
}

const start = (role: StubRole, o: WorkerOptions) =>
  startWorker(role, resolveWorkerOptions('reward', { nats: shared.nats.url, logger: silentLogger, reconnect: { initialDelayMs: 50, maxDelayMs: 100 }, ...o }, {}));

test('options are validated at the edge; the token comes from the option, a file, or the environment', () => {
  const dir = mkdtempSync(join(tmpdir(), 'worker-opts-'));
  writeFileSync(join(dir, 'token'), 's3cret\n');
  writeFileSync(join(dir, 'empty'), '  \n');
  assert.equal(resolveWorkerOptions('learner', { tokenFile: join(dir, 'token') }, {}).token, 's3cret');
  assert.equal(resolveWorkerOptions('learner', {}, { RECOVERY_GRPO_TOKEN: 'fromenv' }).token, 'fromenv');
  assert.equal(resolveWorkerOptions('learner', {}, {}).token, undefined);
  assert.throws(() => resolveWorkerOptions('learner', { tokenFile: join(dir, 'empty') }, {}), /auth token file .*empty is empty/);
  assert.throws(() => resolveWorkerOptions('learner', { tokenFile: join(dir, 'missing') }, {}), /auth token file .*missing: cannot read it \(ENOENT\)/);
  assert.throws(() => resolveWorkerOptions('learner', { metricsPort: 70000 }, {}), /worker options\.metricsPort: /);
  assert.throws(() => resolveWorkerOptions('learner', { orchestrator: 'nohost' }, {}), /worker options\.orchestrator: /);
  assert.throws(() => resolveWorkerOptions('learner', { workerId: 'a b' }, {}), /worker options\.workerId: must match/);
  assert.throws(() => resolveWorkerOptions('learner', { tls: { cert: 'c.pem' } }, {}), /cert and key go together/);
  assert.match(resolveWorkerOptions('rollout', {}, {}).workerId, /^rollout-[A-Za-z0-9._:-]+-\d+$/);
  // CLI: --config supplies address defaults only; a wildcard listen address is dialled on loopback
  writeFileSync(join(dir, 'run.yaml'), 'orchestrator:\n  listen: 0.0.0.0:6000\nnats:\n  url: nats://10.0.0.5:4222\nmetrics:\n  port: 9999\n');
  const o = workerOptionsFromArgs({ config: join(dir, 'run.yaml') });
  assert.deepEqual([o.orchestrator, o.nats, o.metricsPort], ['127.0.0.1:6000', 'nats://10.0.0.5:4222', 9999]);
  assert.equal(workerOptionsFromArgs({ config: join(dir, 'run.yaml'), orchestrator: 'orch:1', metricsPort: 0 }).orchestrator, 'orch:1');
  assert.equal(dialAddress('orch.svc:50051'), 'orch.svc:50051');
});

test('/health is 503 until the orchestrator appears; heartbeats list held tasks; results flow; stop() drains', async () => {
  const port = await freePort();
  const role = new StubRole();
  const w = await start(role, { orchestrator: `127.0.0.1:${port}`, workerId: 'stub-1', heartbeatMs: 50 });
  const h0 = await fetch(`${w.metricsUrl}/health`);
  assert.equal(h0.status, 503);
  assert.equal((await h0.json()).detail.connected, false);
  await new Promise((r) => setTimeout(r, 200)); // a few failed attempts
  const orch = await startFakeOrchestrator({ runId: 'rt-1', config: tinyConfig('rt-1'), listen: `127.0.0.1:${port}`, heartbeatMs: 50 });
  await w.ready;
  await waitFor(async () => (await fetch(`${w.metricsUrl}/health`)).status === 200, 'health 200');
  assert.equal(role.ctx!.config.data.size, 16);
  assert.equal(role.ctx!.runId, 'rt-1');

  await orch.send('stub-1', { score_task: { task_id: 'k1', attempt: 1, lease_ms: 5000 } });
  await waitFor(() => orch.heartbeats.some((h) => h.msg.heartbeat!.active_task_ids.includes('k1')), 'a heartbeat listing k1');
  // a task kind this role does not do
  await orch.send('stub-1', { train_batch: { batch_id: 'b1', batch_seq: 1 } });
  const wrong = await orch.next((m) => m.task_error?.task_id === 'b1');
  assert.equal(wrong.task_error!.code, 'wrong_role');

  const stopping = w.stop({ graceMs: 5000 });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal((await fetch(`${w.metricsUrl}/health`)).status, 503, 'not ready while stopping');
  await role.answer('k1'); // the in-flight task is finished and answered during the grace period
  await stopping;
  const got = await orch.next((m) => m.score_result?.task_id === 'k1');
  assert.equal(got.score_result!.clip_encoder, 'stub');
  assert.ok(role.closed);
  const metrics = await fetch(`${w.metricsUrl}/metrics`).catch(() => null);
  assert.equal(metrics, null, 'the metrics server is closed');
  await orch.close();
});

test('a wrong token or an invalid run config ends the worker (no retry); Shutdown abandons work after its grace', async () => {
  const orch = await startFakeOrchestrator({ runId: 'rt-2', config: tinyConfig('rt-2'), token: 'right' });
  const noToken = await start(new StubRole(), { orchestrator: orch.address, workerId: 'stub-2' });
  await assert.rejects(noToken.done, /UNAUTHENTICATED/);
  const role = new StubRole();
  // The worker's own grace is 10 minutes, so only the Shutdown's 300 ms can end drain() within the bound below.
  const ok = await start(role, { orchestrator: orch.address, workerId: 'stub-3', token: 'right', stopGraceMs: 600_000 });
  await ok.ready;
  await orch.send('stub-3', { score_task: { task_id: 'never', attempt: 1, lease_ms: 5000 } });
  await waitFor(() => role.held.has('never'), 'the task to be held');
  const t0 = Date.now();
  await orch.send('stub-3', { shutdown: { reason: 'bye', grace_ms: 300 } });
  await ok.done; // drain never finishes: abandoned after the Shutdown's 300 ms, not the worker's 10 minutes
  assert.ok(Date.now() - t0 < 120_000, 'the Shutdown message\'s grace_ms was used');
  await orch.close();

  const bad = await startFakeOrchestrator({ runId: 'rt-3', config: { grpo: { groupSize: 1 } } });
  const w = await start(new StubRole(), { orchestrator: bad.address, workerId: 'stub-4' });
  await assert.rejects(w.done, /Welcome\.config_json: .*grpo\.groupSize/);
  await bad.close();
});

test('a Welcome for another run after a reconnect is fatal', async () => {
  const port = await freePort();
  const listen = `127.0.0.1:${port}`;
  const a = await startFakeOrchestrator({ runId: 'rt-4', config: tinyConfig('rt-4'), listen });
  const role = new StubRole();
  const w = await start(role, { orchestrator: listen, workerId: 'stub-5' });
  await w.ready;
  await a.close();
  const b = await startFakeOrchestrator({ runId: 'rt-other', config: tinyConfig('rt-other'), listen });
  await assert.rejects(w.done, /now runs "rt-other", this worker joined "rt-4"/);
  assert.equal(role.inits, 1);
  await b.close();
});

test('the CLI: reward-worker joins with the token from the environment and exits 0 on SIGTERM', async () => {
  const orch = await startFakeOrchestrator({ runId: 'rt-cli', config: tinyConfig('rt-cli'), token: 'tok-env' });
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'reward-worker', '--orchestrator', orch.address, '--nats', shared.nats.url, '--metrics-port', '0', '--worker-id', 'cli-1'], {
    env: { ...process.env, RECOVERY_GRPO_TOKEN: 'tok-env' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const s = await orch.session('cli-1', 90_000); // generous: a CLI start under a loaded CI machine
    await waitFor(() => /joined run rt-cli/.test(stderr), 'the worker to join', 90_000);
    assert.doesNotMatch(stderr, /tok-env/, 'the token is never logged');
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    assert.equal((await s.closed).code, 0);
  } finally {
    child.kill('SIGKILL');
    await orch.close();
  }
});
