// The reward worker over real gRPC and NATS: SSIM 1 for identical images, components per candidate, the SSIM map
// as float16 when asked, the encoder named; NaN candidates and malformed tasks are TaskErrors, never a 0 reward.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';
import { decodeTensor, encodeTensor, type WorkerMessage__Output } from '../../lib/transport/index.ts';
import { BUILTIN_ENCODER_NAME } from '../../lib/models/encoder.ts';
import { silentLogger } from '../../lib/worker/index.ts';
import { runRewardWorker, type RewardWorkerHandle } from '../../reward-worker/index.ts';
import { startFakeOrchestrator, testImage, tinyConfig, type FakeOrchestrator } from './helpers.ts';

const RUN = 'reward-test';
let nats: TestNatsServer;
let orch: FakeOrchestrator;
let worker: RewardWorkerHandle;

before(async () => {
  nats = await startNatsServer();
  orch = await startFakeOrchestrator({ runId: RUN, config: tinyConfig(RUN) });
  worker = await runRewardWorker({ orchestrator: orch.address, nats: nats.url, workerId: 'rew-1', logger: silentLogger, maxBatch: 2 });
  await worker.ready;
});
after(async () => {
  await worker?.stop({ graceMs: 1000 });
  await orch?.close();
  await nats?.stop();
});

const stack = (...imgs: Float32Array[]) => {
  const out = new Float32Array(imgs.length * imgs[0]!.length);
  imgs.forEach((im, i) => out.set(im, i * im.length));
  return out;
};

let counter = 0;
async function score(candidates: Float32Array, n: number, references: Float32Array, nRef: number, wantMap = false, allowNonFinite = false): Promise<WorkerMessage__Output> {
  const task_id = `s${++counter}`;
  const from = orch.received.length;
  await orch.send('rew-1', {
    score_task: {
      task_id, attempt: 1, lease_ms: 30_000, want_ssim_map: wantMap,
      candidates: encodeTensor({ dtype: 'float32', shape: [n, 3, 16, 16], data: candidates }, { allowNonFinite }),
      references: encodeTensor({ dtype: 'float32', shape: [nRef, 3, 16, 16], data: references }),
    },
  });
  return orch.next((m) => (m.score_result?.task_id ?? m.task_error?.task_id) === task_id, { from });
}

test('identical images score SSIM 1 (and cosine 1); a group against one reference; SSIM map as float16', async () => {
  const clean = testImage(3);
  const noisy = clean.map((v, i) => v + 0.2 * Math.sin(i * 12.9898));
  const other = testImage(9);
  // three candidates (two graph calls at max_batch 2) against one broadcast reference
  const m = await score(stack(clean, noisy, other), 3, clean, 1, true);
  const r = m.score_result!;
  assert.ok(r, JSON.stringify(m.task_error));
  assert.equal(r.components.length, 3);
  assert.ok(Math.abs(r.components[0]!.ssim - 1) < 1e-5, `ssim ${r.components[0]!.ssim}`);
  assert.ok(Math.abs(r.components[0]!.clip_cos - 1) < 1e-5, `clip_cos ${r.components[0]!.clip_cos}`);
  assert.ok(r.components[1]!.ssim < 0.95 && r.components[1]!.ssim > 0, `noisy ssim ${r.components[1]!.ssim}`);
  assert.ok(r.components[2]!.ssim < r.components[0]!.ssim);
  assert.equal(r.clip_encoder, BUILTIN_ENCODER_NAME);
  assert.equal(worker.encoderName(), BUILTIN_ENCODER_NAME);
  // float32: the dense advantages are differences of map values, which float16's rounding (2-10% of them at
  // sigma 0.01-0.003, round 24) would blur
  const map = decodeTensor(r.ssim_map, { expectShape: [3, 3, 6, 6], expectDtype: 'float32' });
  for (let i = 0; i < 108; i++) assert.ok(Math.abs(map.data[i]! - 1) < 1e-3);
  // the map's mean is the scalar SSIM (float32 summation aside)
  const meanNoisy = map.data.subarray(108, 216).reduce((a, b) => a + b, 0) / 108;
  assert.ok(Math.abs(meanNoisy - r.components[1]!.ssim) < 1e-5);
  // no map unless asked
  const m2 = await score(clean, 1, clean, 1);
  assert.equal(m2.score_result!.ssim_map, null);
});

test('a NaN candidate is a TaskError non_finite naming it; malformed tasks are bad_input; never a score', async () => {
  const clean = testImage(1);
  const nan = clean.slice();
  nan[100] = NaN;
  const m = await score(stack(clean, nan), 2, clean, 1, false, true);
  assert.equal(m.score_result ?? null, null);
  assert.equal(m.task_error?.code, 'non_finite');
  assert.equal(m.task_error?.retryable, false);
  assert.match(m.task_error!.message, /candidates\[1\]: value NaN at flat index 100/);

  // references count neither 1 nor N
  const bad = await score(stack(clean, clean, clean), 3, stack(clean, clean), 2);
  assert.equal(bad.task_error?.code, 'bad_input');
  assert.match(bad.task_error!.message, /has 2 images, expected 1 or 3/);

  // a task of the wrong kind
  const from = orch.received.length;
  await orch.send('rew-1', { rollout_task: { task_id: 'r1', attempt: 1, lease_ms: 1000, items: [] } });
  const wrong = await orch.next((msg) => msg.task_error?.task_id === 'r1', { from });
  assert.equal(wrong.task_error!.code, 'wrong_role');

  const text = await (await fetch(`${worker.metricsUrl}/metrics`)).text();
  assert.match(text, /recovery_grpo_scores_total\{run_id="reward-test",role="reward"\} 4/);
  const health = await fetch(`${worker.metricsUrl}/health`);
  assert.equal(health.status, 200);
  assert.equal((await health.json()).detail.clip_encoder, BUILTIN_ENCODER_NAME);
});

test('several tasks in one message (TaskBundle) are scored together, each answered as if alone: same scores, a bad one fails on its own', async () => {
  const session = orch.sessions.find((x) => x.workerId === 'rew-1')!;
  assert.equal(session.hello.capabilities.max_tasks_per_message, 4, 'it asks for as many tasks per message as it holds at once');
  const clean = testImage(4);
  const noisy = clean.map((v, i) => v + 0.15 * Math.cos(i * 3.1));
  const task = (id: string, data: Float32Array, allowNonFinite = false) => ({
    task_id: id, attempt: 1, lease_ms: 30_000, want_ssim_map: true,
    candidates: encodeTensor({ dtype: 'float32', shape: [1, 3, 16, 16], data }, { allowNonFinite }),
    references: encodeTensor({ dtype: 'float32', shape: [1, 3, 16, 16], data: clean }),
  });
  const alone = [(await score(noisy, 1, clean, 1, true)).score_result!, (await score(clean, 1, clean, 1, true)).score_result!];
  const from = orch.received.length;
  await orch.send('rew-1', { task_bundle: { score_tasks: [task('b1', noisy), task('b2', clean)] } });
  const got = await Promise.all(['b1', 'b2'].map((id) => orch.next((m) => m.score_result?.task_id === id, { from })));
  got.forEach((m, i) => {
    assert.deepEqual(m.score_result!.components, alone[i]!.components);
    assert.deepEqual(decodeTensor(m.score_result!.ssim_map).data, decodeTensor(alone[i]!.ssim_map).data);
  });
  const nan = clean.slice();
  nan[7] = NaN;
  const from2 = orch.received.length;
  await orch.send('rew-1', { task_bundle: { score_tasks: [task('b3', nan, true), task('b4', noisy)] } });
  const bad = await orch.next((m) => m.task_error?.task_id === 'b3', { from: from2 });
  assert.match(bad.task_error!.message, /candidates\[0\]: value NaN at flat index 7/);
  const ok = await orch.next((m) => m.score_result?.task_id === 'b4', { from: from2 });
  assert.deepEqual(ok.score_result!.components, alone[0]!.components);
});

test('tasks of several candidates, each against its one [1,3,H,W] reference, scored in one call: each as if alone with its reference repeated', async () => {
  // a second worker whose max_batch lets two tasks of 2 candidates share a call (rew-1's is 2)
  const wide = await runRewardWorker({ orchestrator: orch.address, nats: nats.url, workerId: 'rew-wide', logger: silentLogger, maxBatch: 8 });
  try {
    await wide.ready;
    const [refA, refB] = [testImage(5), testImage(6)];
    const candA = stack(refA.map((v, i) => v + 0.1 * Math.sin(i)), refA.map((v, i) => v * 0.8 + 0.05 * Math.cos(i * 1.7)));
    const candB = stack(refB.map((v, i) => v + 0.2 * Math.cos(i * 2.3)), refB.slice());
    const task = (id: string, candidates: Float32Array, reference: Float32Array) => ({
      task_id: id, attempt: 1, lease_ms: 30_000, want_ssim_map: true,
      candidates: encodeTensor({ dtype: 'float32', shape: [2, 3, 16, 16], data: candidates }),
      references: encodeTensor({ dtype: 'float32', shape: [1, 3, 16, 16], data: reference }),
    });
    const alone = [(await score(candA, 2, stack(refA, refA), 2, true)).score_result!, (await score(candB, 2, stack(refB, refB), 2, true)).score_result!];
    const from = orch.received.length;
    await orch.send('rew-wide', { task_bundle: { score_tasks: [task('w1', candA, refA), task('w2', candB, refB)] } });
    const got = await Promise.all(['w1', 'w2'].map((id) => orch.next((m) => m.score_result?.task_id === id, { from })));
    got.forEach((m, i) => {
      assert.deepEqual(m.score_result!.components, alone[i]!.components);
      assert.deepEqual(decodeTensor(m.score_result!.ssim_map).data, decodeTensor(alone[i]!.ssim_map).data);
    });
    assert.notDeepEqual(got[0]!.score_result!.components[0], got[0]!.score_result!.components[1], 'two different candidates');
    // the next call reuses the worker's joined arrays (reward-worker/index.ts `joined`): the tasks in the other order,
    // so a value left from the call before (a reference or candidate not written again) would change their scores
    const from2 = orch.received.length;
    await orch.send('rew-wide', { task_bundle: { score_tasks: [task('w3', candB, refB), task('w4', candA, refA)] } });
    const again = await Promise.all(['w3', 'w4'].map((id) => orch.next((m) => m.score_result?.task_id === id, { from: from2 })));
    [1, 0].forEach((k, i) => {
      assert.deepEqual(again[i]!.score_result!.components, alone[k]!.components);
      assert.deepEqual(decodeTensor(again[i]!.score_result!.ssim_map).data, decodeTensor(alone[k]!.ssim_map).data);
    });
  } finally {
    await wide.stop({ graceMs: 1000 });
  }
});

test('a reward.clipModel that cannot be loaded ends the worker with an error naming the file', async () => {
  const run = 'reward-bad';
  const bad = await startFakeOrchestrator({ runId: run, config: tinyConfig(run, { reward: { clipModel: '/nonexistent/clip.onnx' } }) });
  const w = await runRewardWorker({ orchestrator: bad.address, nats: nats.url, workerId: 'rew-2', logger: silentLogger });
  await assert.rejects(w.done, /reward\.clipModel: cannot read \/nonexistent\/clip\.onnx/);
  await assert.rejects(w.ready);
  await assert.rejects(fetch(`${w.metricsUrl}/health`)); // everything closed
  await bad.close();
});

test('stop() while connected closes the stream with OK', async () => {
  const health = await fetch(`${worker.metricsUrl}/health`);
  assert.equal(health.status, 200);
  await worker.stop({ graceMs: 500 });
  await worker.done;
  const s = orch.sessions.find((x) => x.workerId === 'rew-1')!;
  const end = await s.closed;
  assert.equal(end.code, 0);
});
