// Bad input against real components: a real orchestrator (its gRPC server on 127.0.0.1, run state in a real
// nats-server) fed malformed and oversized gRPC messages through raw @grpc/grpc-js streams, results with wrong
// shapes, NaNs, wrong counts, unknown task ids and the wrong kind through worker streams; checkpoints with
// wrong digests or truncated bytes in front of a learner; invalid configuration values and reward expressions
// that define functions, import or grow without bound. Each is refused with an error that says what was wrong,
// and nothing crashes: the orchestrator keeps serving and the run goes on. Then fast-check properties over the
// message decoders (resolveRolloutItems, decodeScoreTask) and the orchestrator's result validation (decodeTensor
// has its own in test/transport/tensor.test.ts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { parseConfig, loadConfig, type RunConfig, type RunConfigInput } from '../../lib/config/index.ts';
import { openRunDataset } from '../../lib/config/dataset.ts';
import { createMetrics } from '../../lib/metrics/index.ts';
import { encodeCheckpoint } from '../../lib/checkpoint/index.ts';
import { initPolicyParams } from '../../lib/models/policy.ts';
import { policySpecOf } from '../../lib/models/bundle.ts';
import { configHash } from '../../lib/checkpoint/digest.ts';
import {
  CheckpointStore,
  connectNats,
  connectToOrchestrator,
  decodeScoreTask,
  encodeTensor,
  loadProtocol,
  resolveRolloutItems,
  sha256Digest,
  type OrchestratorConnection,
  type OrchestratorMessage,
  type OrchestratorMessage__Output,
  type Tensor,
  type WorkerMessage,
  type WorkerMessage__Output,
} from '../../lib/transport/index.ts';
import { CONNECT_PATH, deserializeResponse, serializeRequest } from '../../lib/transport/grpc-common.ts';
import { runOrchestrator, type RunningOrchestrator } from '../../orchestrator/main.ts';
import { Coordinator } from '../../orchestrator/coordinator.ts';
import type { RunEvent } from '../../orchestrator/run-state.ts';
import { runLearner } from '../../learner/index.ts';
import { silentLogger } from '../../lib/worker/index.ts';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';
import { startFakeOrchestrator, tinyConfig } from '../roles/helpers.ts';
import { fakeSession } from '../helpers/fake-session.ts';
import { CONFIG_EXIT_CODE } from '../../lib/config/setup-error.ts';
import { scrapeMetric } from '../helpers/metrics.ts';
import { waitFor } from '../helpers/wait.ts';

const H = 16;
const G = 2;
const MAX_BYTES = 256 * 1024;
const DEFAULT_EXPR = 'weights.ssim * ssim + weights.clip * exp(-alpha * (1 - clamp(clip_cos, 0, 1)))';
const BIN = fileURLToPath(new URL('../../bin/recovery-grpo.mjs', import.meta.url));

/** Every bad input tried, and how it was refused (printed at the end). */
const tally: Array<{ input: string; refusal: string }> = [];
function refused(input: string, refusal: string): void {
  tally.push({ input, refusal: refusal.replace(/\s+/g, ' ').slice(0, 110) });
}

function runConfig(id: string, extra: RunConfigInput = {}): RunConfig {
  return parseConfig({
    run: { id, seed: 1 },
    data: { size: H, source: { kind: 'procedural', count: 48 } },
    model: { width: 4, depth: 1 },
    sft: { steps: 0 },
    // `+ 0 * log(ssim)`: a score with ssim 0 gives a non-finite reward (refused, see below)
    reward: { expression: `${DEFAULT_EXPR} + 0 * log(ssim)` },
    grpo: { steps: 20, groupSize: G, samplesPerBatch: 2, maxStaleness: 4, advantageMode: 'scalar' },
    orchestrator: { leaseSeconds: 30, heartbeatSeconds: 1, maxMessageBytes: MAX_BYTES },
    ...extra,
  });
}

const img = (v: number, shape = [3, H, H]) => encodeTensor({ dtype: 'float32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(v) });

// -------------------------------------------------------------------------------------------------------------
// One real orchestrator for the stream tests

let nats: TestNatsServer;
let orch: RunningOrchestrator;
const orchLog: string[] = [];
const config = runConfig('bad-input');

before(async () => {
  nats = await startNatsServer();
  orch = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: nats.url, metricsPort: 0, log: (l) => orchLog.push(l) });
});

after(async () => {
  await orch?.stop();
  await nats?.stop();
  const w = Math.max(...tally.map((t) => t.input.length));
  console.log(`bad inputs tried ${tally.length}, refused ${tally.length}:`);
  for (const t of tally) console.log(`  ${t.input.padEnd(w)}  ${t.refusal}`);
});

/** The orchestrator's log line for a refusal, appearing after index `from`. */
function logged(pattern: RegExp, from: number): Promise<string> {
  return waitFor(() => orchLog.slice(from).find((l) => pattern.test(l)), `a log line matching ${pattern}`, orchLog);
}

/** A raw stream that writes the given frames as they are (bytes, or messages serialised here). */
function rawStream(frames: Array<Buffer | WorkerMessage>) {
  const client = new grpc.Client(`127.0.0.1:${orch.port}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 8 * MAX_BYTES });
  const call = client.makeBidiStreamRequest(CONNECT_PATH, (v: Buffer | WorkerMessage) => (Buffer.isBuffer(v) ? v : serializeRequest(v)), deserializeResponse, new grpc.Metadata(), {});
  const got: string[] = [];
  const status = new Promise<grpc.StatusObject>((resolve) => {
    call.on('status', resolve);
    call.on('error', () => {});
    call.on('data', (d: OrchestratorMessage__Output) => got.push(d.kind ?? '?'));
  });
  for (const f of frames) call.write(f);
  return { got, status: status.finally(() => client.close()) };
}

const hello = (role: 'ROLLOUT' | 'REWARD' | 'LEARNER', id: string): WorkerMessage => ({
  hello: { protocol_version: 1, role, worker_id: id, capabilities: { device: 'cpu', max_batch: 8, max_in_flight: 1 } },
});

test('malformed, oversized and out-of-protocol gRPC messages end only their own stream, with a clear status', { timeout: 60_000 }, async () => {
  const cases: Array<{ input: string; frames: Array<Buffer | WorkerMessage>; code: grpc.status; details: RegExp }> = [
    { input: 'bytes that are not a protobuf, as the first message', frames: [Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3])], code: grpc.status.INTERNAL, details: /deserializing/ },
    { input: 'garbage after a valid Hello', frames: [hello('REWARD', 'g1'), Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1])], code: grpc.status.INTERNAL, details: /deserializing/ },
    { input: `a message over maxMessageBytes (${MAX_BYTES} B)`, frames: [hello('REWARD', 'g2'), { score_result: { task_id: 'x', ssim_map: img(0, [1, 3, 160, 160]) } }], code: grpc.status.RESOURCE_EXHAUSTED, details: /larger than max|message/i },
    { input: 'a first message that is not a Hello', frames: [{ heartbeat: { seq: 1 } }], code: grpc.status.INVALID_ARGUMENT, details: /first message on Orchestrator\.Connect must be hello/ },
    { input: 'a Hello with a bad role, worker id and no capabilities', frames: [{ hello: { protocol_version: 1, role: 'ROLE_UNSPECIFIED', worker_id: 'has space' } }], code: grpc.status.INVALID_ARGUMENT, details: /hello\.role: must be one of.*hello\.worker_id: must match/ },
    { input: 'a Hello of another protocol version', frames: [{ hello: { ...hello('REWARD', 'g3').hello, protocol_version: 99 } }], code: grpc.status.FAILED_PRECONDITION, details: /protocol_version 99 is not supported/ },
    { input: 'an empty envelope after Hello', frames: [hello('REWARD', 'g4'), {}], code: grpc.status.INVALID_ARGUMENT, details: /no payload/ },
    { input: 'a second Hello on one stream', frames: [hello('REWARD', 'g5'), hello('REWARD', 'g5')], code: grpc.status.INVALID_ARGUMENT, details: /hello may only be sent once/ },
  ];
  for (const c of cases) {
    const s = await rawStream(c.frames).status;
    assert.equal(s.code, c.code, `${c.input}: got ${grpc.status[s.code]} ${s.details}`);
    assert.match(s.details, c.details, c.input);
    refused(c.input, `${grpc.status[s.code]}: ${s.details}`);
  }
  // still serving: a well-behaved worker gets its Welcome
  const ok = await connectToOrchestrator({ address: `127.0.0.1:${orch.port}`, role: 'REWARD', workerId: 'after-garbage', capabilities: { device: 'cpu', max_batch: 1, max_in_flight: 0 } });
  assert.equal(ok.welcome.run_id, 'bad-input');
  await ok.close();
});

/** A worker stream driven by the test: answers each task with the next item of `answers`. */
async function scriptedWorker(role: 'ROLLOUT' | 'REWARD' | 'LEARNER', id: string): Promise<{ conn: OrchestratorConnection; next: () => Promise<OrchestratorMessage__Output> }> {
  const held = new Set<string>();
  const conn = await connectToOrchestrator({
    address: `127.0.0.1:${orch.port}`, role, workerId: id,
    capabilities: { device: 'cpu', max_batch: 8, max_in_flight: 1 },
    heartbeatMs: 500, heartbeat: () => ({ active_task_ids: [...held] }),
  });
  const it = conn.messages[Symbol.asyncIterator]();
  return {
    conn,
    async next() {
      for (;;) {
        const { value, done } = await it.next();
        if (done) throw new Error(`${id}: stream ended`);
        const m = value as OrchestratorMessage__Output;
        const tid = m.rollout_task?.task_id ?? m.score_task?.task_id ?? m.train_batch?.batch_id;
        if (tid) held.add(tid);
        if (m.kind === 'rollout_task' || m.kind === 'score_task' || m.kind === 'train_batch') return m;
      }
    },
  };
}

test('results with wrong shapes, NaNs, wrong counts, unknown ids or of the wrong kind are refused; the task is retried, then its sample dropped and counted', { timeout: 60_000 }, async () => {
  const roll = await scriptedWorker('ROLLOUT', 'evil-rollout');
  const goodItems = (n = G) => Array.from({ length: n }, (_, g) => ({ sample_id: 's', group_index: g, action: img(0.5), logp: -1 }));
  const bad: Array<{ input: string; items: () => unknown[]; pattern: RegExp }> = [
    { input: 'rollout result with 1 action for a group of 2', items: () => goodItems(1), pattern: /1 actions, expected 2/ },
    { input: 'rollout action of shape [3,8,8]', items: () => [{ ...goodItems()[0], action: img(0.5, [3, 8, 8]) }, goodItems()[1]], pattern: /items\[0\]\.action: shape \[3,8,8\] does not match the expected \[3,16,16\]/ },
    { input: 'rollout action holding a NaN', items: () => [goodItems()[0], { ...goodItems()[1], action: encodeTensor({ dtype: 'float32', shape: [3, H, H], data: new Float32Array(3 * H * H).fill(Number.NaN) }, { allowNonFinite: true }) }], pattern: /items\[1\]\.action: non-finite value NaN/ },
    { input: 'rollout logp = NaN', items: () => [{ ...goodItems()[0], logp: Number.NaN }, goodItems()[1]], pattern: /items\[0\]\.logp is NaN/ },
    { input: 'rollout logp = -Infinity', items: () => [goodItems()[0], { ...goodItems()[1], logp: -Infinity }], pattern: /items\[1\]\.logp is -Infinity/ },
    { input: 'rollout action of dtype float64', items: () => [{ ...goodItems()[0], action: { ...img(0.5), dtype: 'float64' } }, goodItems()[1]], pattern: /dtype must be one of float32, float16, uint8, got "float64"/ },
    { input: 'rollout action with 3 bytes too few', items: () => [{ ...goodItems()[0], action: { ...img(0.5), data: (img(0.5).data as Buffer).subarray(3) } }, goodItems()[1]], pattern: /data has \d+ bytes, shape \[3,16,16\] x float32 \(4 B\) needs 3072/ },
    { input: 'rollout result without its action tensor', items: () => [{ ...goodItems()[0], action: undefined }, goodItems()[1]], pattern: /items\[0\]\.action: tensor is missing/ },
    { input: 'rollout actions in the wrong group order', items: () => goodItems().reverse(), pattern: /items\[0\]\.group_index is 1/ },
  ];
  const errs0 = await scrapeMetric(orch.metricsUrl, 'task_errors_total', { code: 'bad_result' });
  let first: string | undefined;
  let accepted: string | undefined;
  for (let i = 0; i <= bad.length; i++) {
    const task = (await roll.next()).rollout_task!;
    first ??= task.task_id;
    if (i === bad.length) {
      // a valid result for the last one: it is accepted
      await roll.conn.send({ rollout_result: { task_id: task.task_id, attempt: task.attempt, policy_version: 0, items: goodItems() } });
      accepted = task.task_id;
      break;
    }
    const from = orchLog.length;
    await roll.conn.send({ rollout_result: { task_id: task.task_id, attempt: task.attempt, policy_version: 0, items: bad[i].items() as never } });
    const line = await logged(/rejected a message from evil-rollout/, from);
    assert.match(line, bad[i].pattern, bad[i].input);
    refused(bad[i].input, line.replace(/^rejected a message from evil-rollout: /, 'refused, task retried: '));
  }
  assert.equal(await scrapeMetric(orch.metricsUrl, 'task_errors_total', { code: 'bad_result' }) - errs0, bad.length);
  // five refusals of one task: its sample is dropped, with its reason counted
  assert.equal(await scrapeMetric(orch.metricsUrl, 'samples_dropped_total', { reason: 'task_failed' }), 1, orchLog.filter((l) => /giving up|rejected/.test(l)).join('\n'));
  assert.ok(orchLog.some((l) => l.startsWith(`giving up task ${first} after 5 attempts`)));
  refused('the same task refused 5 times', 'sample dropped, samples_dropped_total{reason="task_failed"} = 1');

  // unknown task ids and results of the wrong kind change nothing
  const dup0 = await scrapeMetric(orch.metricsUrl, 'duplicate_results_total', { worker_role: 'rollout' });
  await roll.conn.send({ rollout_result: { task_id: 'no-such-task', attempt: 1, policy_version: 0, items: goodItems() } });
  await roll.conn.send({ task_error: { task_id: 'no-such-task', attempt: 1, code: 'bad_input', message: 'x', retryable: false } });
  await waitFor(async () => (await scrapeMetric(orch.metricsUrl, 'duplicate_results_total', { worker_role: 'rollout' })) === dup0 + 1, 'the unknown result counted', orchLog);
  refused('rollout result for an unknown task id', 'ignored, duplicate_results_total{worker_role="rollout"} + 1');
  refused('task error for an unknown task id', 'ignored (task_errors_total counts it)');
  let from = orchLog.length;
  await roll.conn.send({ train_result: { batch_id: 'bad-input-b1', batch_seq: 1, applied: true, version: 1 } });
  await roll.conn.send({ score_result: { task_id: accepted!.replace(/-r(\d+)-/, '-s$1-'), components: [{ ssim: 1, clip_cos: 1 }, { ssim: 1, clip_cos: 1 }] } });
  refused('a train_result from a rollout worker', (await logged(/refused a train_result from rollout evil-rollout/, from)));
  refused('a score_result from a rollout worker', (await logged(/refused a score_result from rollout evil-rollout/, from)));

  // scores for the accepted group: bad ones refused and retried, then a good one
  const rew = await scriptedWorker('REWARD', 'evil-reward');
  const comps = (ssim: number, clip: number, n = G) => Array.from({ length: n }, () => ({ ssim, clip_cos: clip }));
  const badScores: Array<{ input: string; components: unknown[]; pattern: RegExp }> = [
    { input: 'score result with 3 components for 2 candidates', components: comps(0.5, 0.5, 3), pattern: /3 components, expected 2/ },
    { input: 'score ssim = NaN', components: [{ ssim: Number.NaN, clip_cos: 0.5 }, { ssim: 0.5, clip_cos: 0.5 }], pattern: /components\[0\] is not finite \(ssim NaN/ },
    { input: 'score clip_cos = Infinity', components: [{ ssim: 0.5, clip_cos: 0.5 }, { ssim: 0.5, clip_cos: Infinity }], pattern: /components\[1\] is not finite .*clip_cos Infinity/ },
    { input: 'a score whose reward is not finite (log(0))', components: [{ ssim: 0, clip_cos: 0.5 }, { ssim: 0.5, clip_cos: 0.5 }], pattern: /components\[0\]: reward expression .* evaluated to NaN/ },
  ];
  for (const b of badScores) {
    const task = (await rew.next()).score_task!;
    // the score task of the accepted group: same cursor, its own random lease token
    assert.match(task.task_id, new RegExp(`^${accepted!.replace(/-r(\d+)-[0-9a-f]{24}$/, '-s$1')}-[0-9a-f]{24}$`));
    from = orchLog.length;
    await rew.conn.send({ score_result: { task_id: task.task_id, attempt: task.attempt, components: b.components as never } });
    const line = await logged(/rejected a message from evil-reward/, from);
    assert.match(line, b.pattern, b.input);
    refused(b.input, line.replace(/^rejected a message from evil-reward: /, 'refused, task retried: '));
  }
  const task = (await rew.next()).score_task!;
  assert.equal(task.attempt, badScores.length + 1);
  const goodScores = [{ ssim: 0.9, clip_cos: 0.8 }, { ssim: 0.4, clip_cos: 0.7 }];
  await rew.conn.send({ score_result: { task_id: task.task_id, attempt: task.attempt, components: goodScores } });
  // From here on both workers answer well (the other samples of batch 1 need rollouts and scores).
  const serve = async (w: typeof roll, answer: (m: OrchestratorMessage__Output) => WorkerMessage) => {
    try {
      for (;;) await w.conn.send(answer(await w.next()));
    } catch {
      /* the stream closed */
    }
  };
  void serve(roll, (m) => ({ rollout_result: { task_id: m.rollout_task!.task_id, attempt: m.rollout_task!.attempt, policy_version: 0, items: goodItems() } }));
  void serve(rew, (m) => ({ score_result: { task_id: m.score_task!.task_id, attempt: m.score_task!.attempt, components: goodScores } }));

  // The learner's side: batch 1 (one sample dropped, one trained) arrives. Results for batches never sent and
  // errors for unknown ids are ignored; the real answer is acknowledged.
  const learner = await scriptedWorker('LEARNER', 'evil-learner');
  const batch = (await learner.next()).train_batch!;
  assert.equal(batch.batch_seq, 1);
  assert.equal(new Set(batch.sample_ids).size, 1, 'the batch trains the one sample that was not dropped');
  from = orchLog.length;
  await learner.conn.send({ train_result: { batch_id: 'forged', batch_seq: 999, applied: true, version: 999 } });
  refused('a train_result for batch 999, never sent', await logged(/ignoring a train_result for batch 999/, from));
  await learner.conn.send({ task_error: { task_id: 'forged', code: 'bad_input', message: 'stop the run', retryable: false } });
  refused('a fatal learner error naming an unknown batch', await logged(/ignoring a learner error for "forged"/, from));
  assert.equal(orch.coordinator.state.ackedSeq, 0);
  await learner.conn.send({ train_result: { batch_id: batch.batch_id, batch_seq: 1, applied: true, version: 1 } });
  await waitFor(() => orch.coordinator.state.ackedSeq === 1, 'batch 1 acknowledged', orchLog);
  assert.equal(orch.coordinator.state.learnerVersion, 1);
  // /health carries the run's state in `detail` (docs/kubernetes.md, "Watch it"; it was null until round 26)
  const state = (await (await fetch(`${orch.metricsUrl}/health`)).json()) as {
    ok: boolean;
    detail: { role: string; run_id: string; phase: string; acked_batch: number; policy_version: number; workers: Array<{ role: string; worker_id: string; device: string }> } | null;
  };
  assert.equal(state.ok, true);
  assert.ok(state.detail, 'the orchestrator\'s /health has a detail');
  assert.deepEqual(
    { role: state.detail.role, run_id: state.detail.run_id, phase: state.detail.phase, acked_batch: state.detail.acked_batch, policy_version: state.detail.policy_version },
    { role: 'orchestrator', run_id: 'bad-input', phase: 'grpo', acked_batch: 1, policy_version: 1 },
  );
  assert.ok(state.detail.workers.some((w) => w.role === 'learner' && w.worker_id === 'evil-learner' && w.device === 'cpu'), JSON.stringify(state.detail.workers));
  for (const w of [roll, rew, learner]) await w.conn.close();
  // the orchestrator is still up and well
  const health = await fetch(`${orch.metricsUrl}/health`);
  assert.equal(health.status, 200);
});

test('checkpoints with a wrong digest or truncated bytes: the store refuses them; a learner refuses to resume from one', { timeout: 60_000 }, async () => {
  const runId = 'bad-ckpt';
  const cfg = parseConfig(tinyConfig(runId));
  const nc = await connectNats({ url: nats.url, name: 'bad-ckpt-test' });
  try {
    const store = await CheckpointStore.open(nc, { runId });
    const { bytes, digest } = encodeCheckpoint({ meta: { runId, version: 0, step: 0, lastBatchId: null, configHash: configHash(cfg) }, params: initPolicyParams(policySpecOf(cfg), 7) });
    await assert.rejects(store.put(0, bytes, sha256Digest(bytes.subarray(1))), (e: Error) => {
      refused('a checkpoint put under a digest that is not its own', e.message);
      return /given digest .* is not the digest of the bytes/.test(e.message);
    });
    await store.put(0, bytes, `sha256:${digest}`);
    // the object replaced behind the store's back by a truncated copy (its recorded digest and size stay)
    const os = await nc.jetstream().views.os(store.bucket);
    const info = (await os.info('v0000000000'))!;
    await os.putBlob({ name: info.name, metadata: info.metadata }, bytes.subarray(0, bytes.length - 100));
    await assert.rejects(store.get(0), (e: Error) => {
      refused('a truncated checkpoint object', e.message);
      return /truncated or padded: got \d+ bytes/.test(e.message);
    });
    // a learner that finds it at the head of the store refuses to start rather than train from it
    const fake = await startFakeOrchestrator({ runId, config: tinyConfig(runId) });
    try {
      const l = await runLearner({ orchestrator: fake.address, nats: nats.url, workerId: 'learner-bad-ckpt', logger: silentLogger });
      await assert.rejects(l.done, (e: Error) => {
        refused('a learner resuming from the truncated checkpoint', e.message);
        return /cannot resume from the latest checkpoint \(v0\): .*truncated.*Refusing to start/.test(e.message);
      });
      // a flipped byte (same size): the digest does not match
      const flipped = Buffer.from(bytes);
      flipped[flipped.length - 5] ^= 0xff;
      await os.putBlob({ name: info.name, metadata: info.metadata }, flipped);
      const l2 = await runLearner({ orchestrator: fake.address, nats: nats.url, workerId: 'learner-bad-ckpt-2', logger: silentLogger });
      await assert.rejects(l2.done, (e: Error) => {
        refused('a learner resuming from a checkpoint with a flipped byte', e.message);
        return /cannot resume from the latest checkpoint \(v0\): .*digest mismatch/.test(e.message);
      });
    } finally {
      await fake.close();
    }
    // A writer that died between storing v1 and announcing it left an object behind; its retry carries other bytes
    // (a GPU step need not be bit-reproducible): the unannounced leftover is replaced. An announced version is not.
    const other = encodeCheckpoint({ meta: { runId, version: 1, step: 1, lastBatchId: null, configHash: configHash(cfg) }, params: initPolicyParams(policySpecOf(cfg), 8) });
    const retry = encodeCheckpoint({ meta: { runId, version: 1, step: 1, lastBatchId: null, configHash: configHash(cfg) }, params: initPolicyParams(policySpecOf(cfg), 9) });
    await os.putBlob({ name: 'v0000000001', metadata: { version: '1', digest: `sha256:${other.digest}`, size: String(other.bytes.length), meta: '{}' } }, other.bytes);
    await store.put(1, retry.bytes, `sha256:${retry.digest}`);
    assert.equal((await store.get(1)).announcement.digest, `sha256:${retry.digest}`);
    await assert.rejects(store.put(1, other.bytes, `sha256:${other.digest}`), (e: Error) => {
      refused('re-publishing an announced version with other bytes', e.message);
      return /already exists .* refusing to replace it/.test(e.message);
    });
  } finally {
    await nc.drain();
  }
});

test('invalid configuration values and reward expressions are refused before anything starts, naming the problem', { timeout: 150_000 }, async () => {
  const badValues: Array<[string, RegExp]> = [
    ['grpo.groupSize=1', /grpo\.groupSize: must be >= 2/],
    ['data.size=8', /data\.size: must be >= 11/],
    ['orchestrator.heartbeatSeconds=90', /orchestrator\.heartbeatSeconds: must be < leaseSeconds/],
    ['run.id=has space', /run\.id: must be 1 to 64 letters, digits/],
    ['grpo.clipLow=-1', /grpo\.clipLow/],
    ['reward.weights.nope=1', /reward\.weights\.nope: is not used by reward\.expression/],
    ['grpo.notAField=1', /notAField/],
    ['nats.url=http://x', /nats\.url: must be a nats:\/\/, tls:\/\/, ws:\/\/ or wss:\/\/ URL/],
  ];
  for (const [override, pattern] of badValues) {
    assert.throws(() => loadConfig(undefined, [override]), (e: Error) => {
      assert.match(e.message, pattern, override);
      refused(`config ${override}`, e.message);
      return true;
    });
  }
  // Reward expressions: refused when the configuration is loaded (the schema compiles them), naming the field.
  const expressions: Array<[string, string, RegExp]> = [
    ['defines a function', 'f(x) = x', /function definition is not allowed/],
    ['imports', 'import({}, {})', /function 'import' is not allowed/],
    ['evaluates a string', 'evaluate("1 + 1")', /function 'evaluate' is not allowed/],
    ['assigns', 'a = 2', /assignment is not allowed/],
    ['reads a property', 'ssim.constructor', /unknown name|not allowed/],
    ['is 5000 characters long', `ssim${' + ssim'.repeat(1000)}`, /longer than 1000 characters/],
    ['nests 200 deep', `${'('.repeat(200)}ssim${')'.repeat(200)}`, /nested deeper than 64/],
    ['calls an unknown function', 'fact(1e9)', /function 'fact' is not allowed|unknown/],
  ];
  for (const [what, expression, pattern] of expressions) {
    assert.throws(() => runConfig('bad-expr', { reward: { expression, weights: {} } }), (e: Error) => {
      assert.match(e.message, /reward\.expression: does not compile: reward expression "/, what);
      assert.match(e.message, pattern, `${what}: ${e.message}`);
      refused(`reward expression that ${what}`, `reward expression ...: ${e.message.slice(e.message.lastIndexOf('": ') + 3)}`);
      return true;
    });
  }
  // through the CLI: one line naming the field, exit code CONFIG_EXIT_CODE (not to be restarted as it is), no stack trace
  const r = spawnSync(process.execPath, [BIN, 'orchestrator', '--set', 'grpo.groupSize=0', '--nats', 'nats://127.0.0.1:1'], { encoding: 'utf8', timeout: 90_000 });
  assert.equal(r.status, CONFIG_EXIT_CODE, r.stderr);
  assert.match(r.stderr, /^orchestrator: config error: grpo\.groupSize: must be >= 2 \(got 0\)/);
  assert.doesNotMatch(r.stderr + r.stdout, /\n\s+at /, 'no stack trace');
  refused('recovery-grpo orchestrator --set grpo.groupSize=0', r.stderr.trim());
});

// -------------------------------------------------------------------------------------------------------------
// Properties

const P = loadProtocol().recovery.v1;
const wireTask = (m: OrchestratorMessage) => P.OrchestratorMessage.deserialize(P.OrchestratorMessage.serialize(m)) as OrchestratorMessage__Output;
const wireResult = (m: WorkerMessage) => P.WorkerMessage.deserialize(P.WorkerMessage.serialize(m)) as WorkerMessage__Output;

/** A tensor, possibly broken: wrong dtype, shape, byte count, non-finite values. */
const tensorArb = (shape: number[]) =>
  fc.record({
    dtype: fc.constantFrom('float32', 'float32', 'float16', 'uint8', 'float64', ''),
    shape: fc.oneof({ weight: 3, arbitrary: fc.constant(shape) }, fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 5 })),
    extraBytes: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.integer({ min: -5, max: 5 })),
    poison: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, fc.constantFrom(Number.NaN, Infinity, -Infinity)),
  }).map(({ dtype, shape: s, extraBytes, poison }): Tensor => {
    const n = s.reduce((a, b) => a * b, 1);
    const item = dtype === 'float16' ? 2 : dtype === 'uint8' ? 1 : 4;
    const buf = Buffer.alloc(Math.max(0, n * item + extraBytes));
    if (dtype === 'float32' || dtype === 'float64' || dtype === '') for (let i = 0; i + 4 <= buf.length; i += 4) buf.writeFloatLE(0.25, i);
    if (poison !== undefined && buf.length >= 4) buf.writeFloatLE(poison, 0);
    return { dtype, shape: s, data: buf };
  });

test('property: resolveRolloutItems returns items whose images are [3,H,W] of their sample, or throws an Error naming the item', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ sample: fc.constantFrom('a', 'b', ''), group: fc.integer({ min: 0, max: 3 }), image: fc.option(tensorArb([3, 4, 4]), { nil: undefined }), seed: fc.constantFrom('1', '18446744073709551615') }), { maxLength: 6 }),
      (items) => {
        const task = wireTask({ rollout_task: { task_id: 't', items: items.map((i) => ({ sample_id: i.sample, group_index: i.group, noise_seed: i.seed, image: i.image })) } }).rollout_task!;
        let out;
        try {
          out = resolveRolloutItems(task);
        } catch (e) {
          assert.ok(e instanceof Error && !(e instanceof TypeError), `not a clean Error: ${e}`);
          assert.match(e.message, /^rollout_task\.items\[\d+\](\.image|\.sample_id)?: /);
          return;
        }
        assert.equal(out.length, items.length);
        const last = new Map<string, unknown>();
        out.forEach((it, k) => {
          assert.equal(it.image.shape.length, 3);
          assert.equal(it.image.shape[0], 3);
          assert.ok(it.image.data.every(Number.isFinite));
          if (items[k].image) last.set(it.sample_id, it.image);
          assert.equal(it.image, last.get(it.sample_id), 'an item without an image shares the latest one of its sample');
        });
      },
    ),
    { numRuns: 400 },
  );
});

test('property: decodeScoreTask gives one reference per candidate or one shared [1,3,H,W], or throws an Error naming the field', () => {
  const arb = fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.boolean()).chain(([n, nRef, broken]) =>
    fc.tuple(
      broken ? tensorArb([n, 3, 4, 4]) : fc.constant(img(0.5, [n, 3, 4, 4])),
      broken ? tensorArb([nRef, 3, 4, 4]) : fc.constant(img(0.25, [nRef, 3, 4, 4])),
      fc.boolean(),
    ));
  fc.assert(
    fc.property(arb, ([cand, ref, dropRef]) => {
      const task = wireTask({ score_task: { task_id: 's', candidates: cand, references: dropRef ? undefined : ref } }).score_task!;
      let out;
      try {
        out = decodeScoreTask(task);
      } catch (e) {
        assert.ok(e instanceof Error && !(e instanceof TypeError), `not a clean Error: ${e}`);
        assert.match(e.message, /^score_task\.(candidates|references): /);
        return;
      }
      const [cn, , ch, cw] = out.candidates.shape as number[];
      const rn = out.references.shape[0]!;
      assert.ok(rn === 1 || rn === cn, `references: ${rn} images for ${cn} candidates`);
      assert.deepEqual(out.references.shape, [rn, 3, ch, cw]);
      assert.equal(out.references.data.length, (out.candidates.data.length / cn!) * rn);
    }),
    { numRuns: 500 },
  );
});

test("property: the orchestrator's result validation accepts exactly the well-formed results, never throws, and retries the rest", { timeout: 60_000 }, async () => {
  const cfg = runConfig('prop', { grpo: { steps: 1, groupSize: G, samplesPerBatch: 1, maxStaleness: 0, advantageMode: 'scalar' } });
  const dataset = await openRunDataset(cfg, 'train');
  /** A fresh coordinator with one fake rollout and one fake reward worker, its first rollout task dispatched. */
  async function fresh() {
    const events: RunEvent[] = [];
    const log: string[] = [];
    const c = new Coordinator({ config: cfg, dataset, metrics: createMetrics('prop', 'orchestrator'), state: { ackedSeq: 0, learnerVersion: 0 }, persist: async () => {}, onEvent: (e) => events.push(e), log: (l) => log.push(l) });
    const roll = fakeSession('ROLLOUT', 'r');
    const rew = fakeSession('REWARD', 's');
    c.attach(roll);
    c.attach(rew);
    c.start();
    // polled every 5 ms (240 coordinators), bounded by 20 s, not by a count of polls (200 polls, about 1 s, could run out on a loaded machine)
    for (const t0 = Date.now(); !roll.sent.length; await new Promise((r) => setTimeout(r, 5))) {
      if (Date.now() - t0 > 20_000) throw new Error(`no rollout task dispatched within 20 s\n${log.join('\n')}`);
    }
    const task = roll.sent[0]!.rollout_task!;
    return { c, roll, rew, events, log, task };
  }
  const goodItems = () => Array.from({ length: G }, (_, g) => ({ sample_id: 'x', group_index: g, action: img(0.5), logp: -1 }));
  const rolloutCorruption = fc.oneof(
    fc.constant({ kind: 'none' as const }),
    fc.record({ kind: fc.constant('count' as const), n: fc.constantFrom(0, 1, 3) }),
    fc.record({ kind: fc.constant('action' as const), i: fc.integer({ min: 0, max: G - 1 }), t: tensorArb([3, H, H]) }),
    fc.record({ kind: fc.constant('logp' as const), i: fc.integer({ min: 0, max: G - 1 }), v: fc.constantFrom(Number.NaN, Infinity, -Infinity) }),
    fc.record({ kind: fc.constant('order' as const) }),
  );
  await fc.assert(
    fc.asyncProperty(rolloutCorruption, async (cor) => {
      const { c, roll, rew, events, log, task } = await fresh();
      let items: Array<Record<string, unknown>> = goodItems();
      if (cor.kind === 'count') items = Array.from({ length: cor.n }, (_, g) => ({ ...goodItems()[0], group_index: g }));
      if (cor.kind === 'action') items[cor.i] = { ...items[cor.i], action: cor.t };
      if (cor.kind === 'logp') items[cor.i] = { ...items[cor.i], logp: cor.v };
      if (cor.kind === 'order') items.reverse();
      const msg = wireResult({ rollout_result: { task_id: task.task_id, attempt: 1, policy_version: 0, items: items as never } });
      c.handle(roll, msg); // never throws
      await nextTurn(); // the task board dispatches once per turn of the event loop
      // the reference answer: well-formed iff every action decodes as finite float32/16/uint8 [3,H,W] etc.
      const wellFormed = cor.kind === 'none' || (cor.kind === 'action' && isWellFormed(cor.t));
      const accepted = events.some((e) => e.type === 'rollout');
      assert.equal(accepted, wellFormed, `${JSON.stringify(cor, (_k, v) => (v?.type === 'Buffer' ? `${v.data.length} B` : v))}: ${log.join('; ')}`);
      if (accepted) assert.equal(rew.sent.length, 1, 'a score task follows an accepted rollout');
      else {
        assert.ok(log.some((l) => /^rejected a message from r: rollout_result/.test(l)), log.join('; '));
        assert.equal(roll.sent.length, 2, 'the refused task is dispatched again');
        assert.equal(roll.sent[1]!.rollout_task!.attempt, 2);
      }
    }),
    { numRuns: 120 },
  );
  // score results, after an accepted rollout
  const scoreCorruption = fc.record({
    n: fc.oneof({ weight: 4, arbitrary: fc.constant(G) }, fc.constantFrom(0, 1, 3)),
    ssim: fc.oneof({ weight: 4, arbitrary: fc.double({ min: 0.01, max: 1, noNaN: true }) }, fc.constantFrom(Number.NaN, Infinity, 0)),
    clip: fc.oneof({ weight: 4, arbitrary: fc.double({ min: -1, max: 1, noNaN: true }) }, fc.constantFrom(Number.NaN, -Infinity)),
  });
  await fc.assert(
    fc.asyncProperty(scoreCorruption, async ({ n, ssim, clip }) => {
      const { c, roll, rew, events, log, task } = await fresh();
      c.handle(roll, wireResult({ rollout_result: { task_id: task.task_id, attempt: 1, policy_version: 0, items: goodItems() } }));
      await nextTurn();
      const st = rew.sent[0]!.score_task!;
      const components = Array.from({ length: n }, (_, i) => (i === 0 ? { ssim, clip_cos: clip } : { ssim: 0.5, clip_cos: 0.5 }));
      c.handle(rew, wireResult({ score_result: { task_id: st.task_id, attempt: 1, components } }));
      await nextTurn();
      // ssim is stored as a proto float: 0.01..1 stays positive; 0 makes the reward log(0) non-finite
      const wellFormed = n === G && Number.isFinite(ssim) && ssim > 0 && Number.isFinite(clip);
      assert.equal(events.some((e) => e.type === 'scored'), wellFormed, `${n} ${ssim} ${clip}: ${log.join('; ')}`);
      if (!wellFormed) assert.equal(rew.sent.length, 2, 'the refused score task is dispatched again');
    }),
    { numRuns: 120 },
  );
});

const nextTurn = () => new Promise<void>((r) => setImmediate(r));

/** Whether a (possibly broken) action tensor is a finite [3,H,W] the orchestrator should accept. */
function isWellFormed(t: Tensor): boolean {
  const item = ({ float32: 4, float16: 2, uint8: 1 } as Record<string, number>)[t.dtype as string];
  if (!item) return false;
  const shape = t.shape as number[];
  if (shape.length !== 3 || shape[0] !== 3 || shape[1] !== H || shape[2] !== H) return false;
  const buf = t.data as Buffer;
  if (buf.length !== 3 * H * H * item) return false;
  if (t.dtype === 'float32') for (let i = 0; i < buf.length; i += 4) if (!Number.isFinite(buf.readFloatLE(i))) return false;
  if (t.dtype === 'float16') for (let i = 0; i < buf.length; i += 2) if ((buf.readUInt16LE(i) & 0x7c00) === 0x7c00) return false;
  return true;
}
