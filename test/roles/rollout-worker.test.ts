// The rollout worker against a real nats-server and a hand-written orchestrator over real gRPC: G actions per
// sample, batched across tasks, reproducible from noise seeds, stamped with the version that produced them;
// it follows new checkpoints, refuses tampered ones (keeping its weights), waits for policy_version_min.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { NatsConnection } from 'nats';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';
import {
  CheckpointStore,
  connectNats,
  decodeTensor,
  encodeTensor,
  type RolloutItem,
  type WorkerMessage__Output,
} from '../../lib/transport/index.ts';
import { cloneTensorMap, encodeCheckpoint } from '../../lib/checkpoint/index.ts';
import { configHash } from '../../lib/checkpoint/digest.ts';
import { initPolicyParams } from '../../lib/models/policy.ts';
import { policySpecOf } from '../../lib/models/bundle.ts';
import { PolicyRunner } from '../../lib/models/runner.ts';
import { standardNormal } from '../../lib/data/random.ts';
import { silentLogger } from '../../lib/worker/index.ts';
import { runRolloutWorker, type RolloutWorkerHandle } from '../../rollout-worker/index.ts';
import { parsed, publishParams, startFakeOrchestrator, testImage, tinyConfig, waitFor, type FakeOrchestrator } from './helpers.ts';

const RUN = 'roll-test';
const input = tinyConfig(RUN);
const config = parsed(input);
const spec = policySpecOf(config);
const PER = 3 * 16 * 16;

let nats: TestNatsServer;
let nc: NatsConnection;
let store: CheckpointStore;
let orch: FakeOrchestrator;
let worker: RolloutWorkerHandle;
const v1 = initPolicyParams(spec, 1);
const v2 = cloneTensorMap(v1);
v2.get('head.bias')!.data.fill(0.05); // v2's mean is v1's + 0.05 everywhere

before(async () => {
  nats = await startNatsServer();
  nc = await connectNats({ url: nats.url, name: 'rollout-test' });
  store = await CheckpointStore.open(nc, { runId: RUN });
  await publishParams(store, config, RUN, 1, v1);
  orch = await startFakeOrchestrator({ runId: RUN, config: input, policyVersion: 1 });
  worker = await runRolloutWorker({
    orchestrator: orch.address, nats: nats.url, workerId: 'roll-1', logger: silentLogger, maxBatch: 3, versionWaitMs: 1500,
  });
  await worker.ready;
});
after(async () => {
  await worker?.stop({ graceMs: 1000 });
  await orch?.close();
  await nc?.close();
  await nats?.stop();
});

/** Items for `samples` samples x G: only the first item of each sample carries the image. */
function items(samples: string[], G: number, seedBase = 100): RolloutItem[] {
  return samples.flatMap((sample_id, s) =>
    Array.from({ length: G }, (_, g) => ({
      sample_id,
      group_index: g,
      noise_seed: String(seedBase + s * G + g),
      ...(g === 0 ? { image: encodeTensor({ dtype: 'float32', shape: [3, 16, 16], data: testImage(s) }) } : {}),
    })),
  );
}

let taskCounter = 0;
async function rollout(its: RolloutItem[], extra: { policy_version_min?: number; task_id?: string; attempt?: number; want_logp_map?: boolean } = {}): Promise<WorkerMessage__Output> {
  const task_id = extra.task_id ?? `t${++taskCounter}`;
  const from = orch.received.length;
  await orch.send('roll-1', { rollout_task: { task_id, attempt: extra.attempt ?? 1, lease_ms: 30_000, items: its, ...extra } });
  return orch.next((m) => (m.rollout_result?.task_id ?? m.task_error?.task_id) === task_id, { from });
}

const actionsOf = (m: WorkerMessage__Output) => m.rollout_result!.items.map((it) => decodeTensor(it.action, { expectShape: [3, 16, 16] }).data);

test('G actions per sample, batched across tasks, reproducible from noise seeds, equal to the policy graph', async () => {
  assert.equal(worker.policyVersion(), 1);
  const health = await fetch(`${worker.metricsUrl}/health`);
  assert.equal(health.status, 200);
  assert.equal((await health.json()).detail.policy_version, 1);

  // two tasks at once (4 + 2 items, max_batch 3; on CPU one task per call): three policy calls
  const [a, b] = await Promise.all([rollout(items(['s0', 's1'], 2)), rollout(items(['s2'], 2, 500))]);
  for (const [m, n] of [[a, 4], [b, 2]] as const) {
    const r = m.rollout_result!;
    assert.ok(r, JSON.stringify(m.task_error));
    assert.equal(r.policy_version, 1);
    assert.equal(r.items.length, n);
    assert.ok(r.items.every((it) => Number.isFinite(it.logp)));
  }
  assert.deepEqual(a.rollout_result!.items.map((it) => [it.sample_id, it.group_index]), [['s0', 0], ['s0', 1], ['s1', 0], ['s1', 1]]);
  const actsA = actionsOf(a);
  assert.notDeepEqual(actsA[0], actsA[1], 'two noise seeds, two different actions');

  // a re-run (another attempt, alone this time) gives identical bytes
  const again = await rollout(items(['s0', 's1'], 2), { task_id: a.rollout_result!.task_id, attempt: 2 });
  assert.equal(again.rollout_result!.attempt, 2);
  a.rollout_result!.items.forEach((it, i) => {
    assert.ok(Buffer.from(it.action!.data).equals(Buffer.from(again.rollout_result!.items[i]!.action!.data)), `item ${i} differs on re-run`);
    assert.equal(it.logp, again.rollout_result!.items[i]!.logp);
  });

  // and equal to running the policy graph directly with noise = standardNormal(3HW, seed)
  const runner = await PolicyRunner.create(config);
  const direct = await runner.run(v1, testImage(1), standardNormal(PER, 100 + 1 * 2 + 1), 1);
  await runner.release();
  assert.deepEqual(actsA[3], direct.action);
  assert.equal(a.rollout_result!.items[3]!.logp, direct.logp[0]);

  // dense advantages ask for the per-element log-density, whose mean is logp
  const dense = await rollout(items(['s0'], 2), { want_logp_map: true });
  dense.rollout_result!.items.forEach((it) => {
    const map = decodeTensor(it.logp_map, { expectShape: [3, 16, 16] }).data;
    const mean = map.reduce((s, x) => s + x, 0) / map.length;
    assert.ok(Math.abs(mean - it.logp) < 1e-4, `mean of logp_map ${mean} vs logp ${it.logp}`);
  });
  assert.equal(a.rollout_result!.items[0]!.logp_map, null);

  // bad input is a TaskError, not a result
  const bad = await rollout([{ sample_id: 'x', group_index: 0, noise_seed: '1', image: encodeTensor({ dtype: 'float32', shape: [3, 8, 8], data: new Float32Array(192) }) }]);
  assert.equal(bad.task_error?.code, 'bad_input');
  assert.match(bad.task_error!.message, /is 8x8, this run's policy takes 16x16/);
  // heartbeats come every 200 ms on their own clock: wait for one rather than race it
  await waitFor(() => orch.heartbeats.some((h) => h.msg.heartbeat!.policy_version === 1), 'a heartbeat stamped with policy version 1');
});

test('follows a new checkpoint between batches and stamps results with it', async () => {
  const before1 = actionsOf(await rollout(items(['s0'], 2)));
  await publishParams(store, config, RUN, 2, v2);
  await waitFor(() => worker.policyVersion() === 2, 'the worker to swap to v2');
  const m = await rollout(items(['s0'], 2));
  assert.equal(m.rollout_result!.policy_version, 2);
  const after2 = actionsOf(m);
  for (let i = 0; i < PER; i++) assert.ok(Math.abs(after2[0]![i]! - before1[0]![i]! - 0.05) < 1e-5);
});

test('a tampered or mismatched checkpoint is refused and counted; the worker keeps its version', async () => {
  const metricsText = async () => (await fetch(`${worker.metricsUrl}/metrics`)).text();
  // v3: a valid file whose parameters have the wrong shapes (another model)
  const other = initPolicyParams({ ...spec, width: 5 }, 1);
  await publishParams(store, config, RUN, 3, other);
  await waitFor(async () => /checkpoint_fetch_failures_total\{reason="invalid",run_id="roll-test",role="rollout"\} 1/.test(await metricsText()), 'the v3 refusal to be counted');
  assert.equal(worker.policyVersion(), 2);

  // v4: its object's bytes differ from the digest it was stored and announced with
  const good = encodeCheckpoint({ meta: { runId: RUN, version: 4, step: 4, lastBatchId: null, configHash: configHash(config) }, params: v1 });
  const digest = `sha256:${good.digest}`;
  const name = 'v0000000004';
  const evil = Buffer.from(good.bytes);
  evil[evil.length - 5]! ^= 0x01;
  const os = await nc.jetstream().views.os(`checkpoints-${RUN}`);
  await os.putBlob({ name, metadata: { version: '4', digest, size: String(evil.length), meta: '{}' } }, evil);
  await nc.jetstream().publish(`recovery.${RUN}.checkpoint`, new TextEncoder().encode(JSON.stringify({
    run_id: RUN, version: 4, name, digest, size: evil.length, meta: {}, published_unix_ms: Date.now(),
  })));
  await waitFor(async () => /checkpoint_fetch_failures_total\{reason="integrity",run_id="roll-test",role="rollout"\} 1/.test(await metricsText()), 'the v4 refusal to be counted');
  assert.equal(worker.policyVersion(), 2);
  const m = await rollout(items(['s0'], 2));
  assert.equal(m.rollout_result!.policy_version, 2);

  // a task that needs a version nobody can provide fails after versionWaitMs, naming the refusal
  const stuck = await rollout(items(['s0'], 2), { policy_version_min: 4 });
  assert.equal(stuck.task_error?.code, 'policy_unavailable');
  assert.equal(stuck.task_error?.retryable, true);
  assert.match(stuck.task_error!.message, /needs policy version >= 4; this worker holds 2 .*refused: .*digest mismatch/);

  const text = await (await fetch(`${worker.metricsUrl}/metrics`)).text();
  assert.match(text, /recovery_grpo_policy_version\{run_id="roll-test",role="rollout"\} 2/);
  assert.match(text, /recovery_grpo_rollouts_total\{run_id="roll-test",role="rollout"\} \d+/);
  assert.match(text, /recovery_grpo_checkpoint_fetch_bytes_total\{run_id="roll-test",role="rollout"\} \d+/);
  assert.match(text, /recovery_grpo_task_latency_seconds_count\{[^}]*worker_role="rollout"[^}]*\} [1-9]/);
});

test('policy_version_min: the task waits for the newer checkpoint, then runs on it; Shutdown stops the worker', async () => {
  const pending = rollout(items(['s1'], 2), { policy_version_min: 5 });
  await new Promise((r) => setTimeout(r, 300));
  await publishParams(store, config, RUN, 5, v1);
  const m = await pending;
  assert.equal(m.rollout_result?.policy_version, 5, JSON.stringify(m.task_error));

  await orch.send('roll-1', { shutdown: { reason: 'test over', grace_ms: 1000 } });
  await worker.done;
  assert.equal(worker.isConnected(), false);
  await assert.rejects(fetch(`${worker.metricsUrl}/health`));
});
