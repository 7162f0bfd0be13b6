// grpo.ema in the learner (lib/grpo/weight-average.ts): the average starts at the version GRPO starts from,
// takes one update per applied GRPO batch, is stored beside the AdamW moments of every version (so a stopped and
// restarted learner continues it), and the run's last GRPO batch (seq sft.steps + grpo.steps) publishes it in
// place of the trained weights. Checked against the average computed by hand from the published versions.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { NatsConnection } from 'nats';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';
import { CheckpointStore, connectNats, encodeTensor, type TrainBatch, type WorkerMessage__Output } from '../../lib/transport/index.ts';
import { decodeCheckpoint, type TensorMap } from '../../lib/checkpoint/index.ts';
import { policySpecOf, paramShapes } from '../../lib/models/bundle.ts';
import { PolicyRunner } from '../../lib/models/runner.ts';
import { PolicyTrainer } from '../../lib/models/trainer.ts';
import { standardNormal } from '../../lib/data/random.ts';
import { LearnerStateStore, silentLogger } from '../../lib/worker/index.ts';
import { runLearner, type LearnerHandle } from '../../learner/index.ts';
import { noisy, parsed, sftBatch as sftTestBatch, stackImages, startFakeOrchestrator, tinyConfig, type FakeOrchestrator } from './helpers.ts';

const RUN = 'learn-average';
const D = 0.5;
// SFT 1 batch, GRPO 3 (seqs 2-4; seq 4 is the last and publishes the average); no warm-up: decay D throughout
const input = tinyConfig(RUN, { sft: { lr: 0.003, steps: 1 }, optim: { lr: 0.003 }, grpo: { groupSize: 2, clipLow: 0.2, clipHigh: 0.2, beta: 0.5, steps: 3, ema: D } });
const config = parsed(input);
const spec = policySpecOf(config);
const PER = 3 * 16 * 16;
const N = 4;

let nats: TestNatsServer;
let nc: NatsConnection;
let store: CheckpointStore;
let orch: FakeOrchestrator;
let learner: LearnerHandle;
const learnerOptions = () => ({ orchestrator: orch.address, nats: nats.url, workerId: 'learner-1', logger: silentLogger, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });

before(async () => {
  nats = await startNatsServer();
  nc = await connectNats({ url: nats.url, name: 'learner-average-test' });
  store = await CheckpointStore.open(nc, { runId: RUN });
  orch = await startFakeOrchestrator({ runId: RUN, config: input });
  learner = await runLearner(learnerOptions());
  await learner.ready;
});
after(async () => {
  await learner?.stop({ graceMs: 1000 });
  await orch?.close();
  await nc?.close();
  await nats?.stop();
});

const f32 = (shape: number[], data: Float32Array) => encodeTensor({ dtype: 'float32', shape, data });

interface GrpoData { images: Float32Array; actions: Float32Array; logpOld: Float32Array; advantages: Float32Array }
async function grpoData(params: TensorMap, seed: number): Promise<GrpoData> {
  const images = noisy(stackImages([seed, seed, seed + 1, seed + 1]));
  const noise = new Float32Array(N * PER);
  for (let i = 0; i < N; i++) noise.set(standardNormal(PER, seed * 10 + i), i * PER);
  const runner = await PolicyRunner.create(config);
  const out = await runner.run(params, images, noise, N);
  await runner.release();
  return { images, actions: out.action, logpOld: out.logp, advantages: Float32Array.of(1, -1, 0.5, -0.5) };
}
const grpoBatch = (seq: number, d: GrpoData, version: number): TrainBatch => ({
  batch_id: `${RUN}-b${seq}`, batch_seq: seq, kind: 'GRPO', lease_ms: 30_000,
  images: f32([N, 3, 16, 16], d.images), actions: f32([N, 3, 16, 16], d.actions),
  logp_old: f32([N], d.logpOld), advantages: f32([N], d.advantages),
  behaviour_versions: Array(N).fill(version), sample_ids: ['a', 'a', 'b', 'b'], group_indices: [0, 1, 0, 1],
});
async function train(b: TrainBatch): Promise<WorkerMessage__Output> {
  const from = orch.received.length;
  await orch.send('learner-1', { train_batch: b });
  return orch.next((m) => (m.train_result?.batch_id ?? m.task_error?.task_id) === b.batch_id, { from });
}
const paramsAt = async (version: number) => decodeCheckpoint((await store.get(version)).bytes, { expectedShapes: paramShapes(spec) }).params;
const savedAt = async (version: number) => {
  const { announcement } = await store.get(version);
  return (await (await LearnerStateStore.open(nc, RUN)).get(version, announcement.digest, await paramsAt(version)))!;
};
/** The EMA without warm-up of `seq` (start, then one update each), in float64 then float32 as ParamEma stores it. */
function byHand(seq: TensorMap[]): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [k, t0] of seq[0]!) {
    const a = Float32Array.from(t0.data);
    for (const p of seq.slice(1)) for (let i = 0; i < a.length; i++) a[i] = D * a[i]! + (1 - D) * p.get(k)!.data[i]!;
    out.set(k, a);
  }
  return out;
}
const maxDiff = (a: TensorMap, b: Map<string, Float32Array>) => Math.max(...[...a].map(([k, t]) => Math.max(...t.data.map((x, i) => Math.abs(x - b.get(k)![i]!)))));

test('grpo.ema: stored with the moments at every GRPO version, continued across a restart, published at the last batch', { timeout: 120_000 }, async () => {
  assert.equal((await train(sftTestBatch(RUN, 1))).train_result!.applied, true);
  assert.equal((await savedAt(1)).average, undefined, 'no average before GRPO starts');
  for (const seq of [2, 3]) {
    const v = seq - 1;
    const r = (await train(grpoBatch(seq, await grpoData(await paramsAt(v), seq), v))).train_result!;
    assert.deepEqual([r.applied, r.version], [true, seq]);
  }
  const [v1, v2, v3] = [await paramsAt(1), await paramsAt(2), await paramsAt(3)];
  const s3 = await savedAt(3);
  assert.equal(s3.average?.updates, 2);
  assert.ok(maxDiff(s3.average!.shadow, byHand([v1, v2, v3])) < 1e-6, 'the stored average is the EMA of v1 (start), v2, v3');
  assert.ok(maxDiff(v3, byHand([v1, v2, v3])) > 1e-4, 'before the last batch the published weights are the trained ones');

  // restart: the average comes back from the store and the last batch (seq 4) publishes it
  await learner.stop();
  await learner.done;
  learner = await runLearner(learnerOptions());
  await learner.ready;
  const d = await grpoData(v3, 4);
  // the trained weights of seq 4, as the learner computes them (from v3's moments, against the reference v1)
  const trainer = PolicyTrainer.create(config, await paramsAt(3), { optimizerState: s3.state });
  const runner = await PolicyRunner.create(config);
  const refMean = (await runner.run(v1, d.images, new Float32Array(N * PER), N)).mean;
  await trainer.grpoStep({ n: N, images: d.images, actions: d.actions, logpOld: d.logpOld, advantages: d.advantages, refMean });
  await runner.release();
  await trainer.release();
  const raw4 = trainer.params;
  const r = (await train(grpoBatch(4, d, 3))).train_result!;
  assert.deepEqual([r.applied, r.version], [true, 4]);
  const v4 = await paramsAt(4);
  const want = byHand([v1, v2, v3, raw4]);
  assert.ok(maxDiff(v4, want) < 1e-6, `the final version is the average (max diff ${maxDiff(v4, want)})`);
  assert.ok(maxDiff(raw4, want) > 1e-4, 'and not the trained weights');
  assert.equal((await savedAt(4)).average?.updates, 3);
});
