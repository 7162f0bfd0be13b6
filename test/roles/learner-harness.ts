// The learner as its tests drive it (learner.test.ts, learner-average.test.ts, learner-store-loss.test.ts): a fake
// orchestrator over real gRPC, the learner itself (stopped and started again at will), readers of what it
// published, GRPO batches rolled out from a published version as rollout workers would, and the step a learner
// should take, computed in this process.
import assert from 'node:assert/strict';
import type { NatsConnection } from 'nats';
import { CheckpointStore, connectNats, encodeTensor, trainBatchDigest, type TrainBatch, type WorkerMessage__Output } from '../../lib/transport/index.ts';
import { cloneTensorMap, decodeCheckpoint, type DecodedCheckpoint, type Tensor, type TensorMap } from '../../lib/checkpoint/index.ts';
import type { OptimizerStateFile } from '../../lib/checkpoint/optimizer-state.ts';
import type { RunConfig, RunConfigInput } from '../../lib/config/index.ts';
import { paramShapes, policySpecOf } from '../../lib/models/bundle.ts';
import { PolicyRunner } from '../../lib/models/runner.ts';
import { PolicyTrainer } from '../../lib/models/trainer.ts';
import { standardNormal } from '../../lib/data/random.ts';
import { LearnerStateStore, silentLogger } from '../../lib/worker/index.ts';
import { runLearner, type LearnerHandle, type LearnerOptions } from '../../learner/index.ts';
import { noisy, parsed, stackImages, startFakeOrchestrator, type FakeOrchestrator } from './helpers.ts';

/** Samples per GRPO batch (2 images x G = 2) and values per 16x16 image. */
export const N = 4;
export const PER = 3 * 16 * 16;

export interface LearnerRig {
  readonly config: RunConfig;
  readonly nc: NatsConnection;
  readonly store: CheckpointStore;
  /** The fake orchestrator now running (replaced by restartOrchestrator). */
  readonly orch: FakeOrchestrator;
  /** The learner process now running (replaced by restartLearner). */
  readonly learner: LearnerHandle;
  /** Sends a batch to the learner and waits for its TrainResult or TaskError. */
  train(b: TrainBatch, timeoutMs?: number): Promise<WorkerMessage__Output>;
  /** Checkpoint `version` from the store (verified against `expectDigest` when given). */
  checkpointAt(version: number, expectDigest?: string): Promise<DecodedCheckpoint>;
  /** The learner's own state of `version` (AdamW moments, the weight average): never in the broadcast checkpoint. */
  savedAt(version: number): Promise<OptimizerStateFile>;
  /** Stops the learner and starts a new one on the same NATS and orchestrator (a restart). */
  restartLearner(): Promise<void>;
  /** Closes the orchestrator and starts a new one on the same port. */
  restartOrchestrator(): Promise<void>;
  close(): Promise<void>;
}

export async function startLearnerRig(opts: {
  runId: string;
  input: RunConfigInput;
  natsUrl: string;
  learner?: Pick<LearnerOptions, 'publishRetryMs' | 'logger'>;
}): Promise<LearnerRig> {
  const { runId, input, natsUrl } = opts;
  const config = parsed(input);
  const shapes = paramShapes(policySpecOf(config));
  const nc = await connectNats({ url: natsUrl, name: `${runId}-test` });
  const store = await CheckpointStore.open(nc, { runId });
  let orch = await startFakeOrchestrator({ runId, config: input });
  const start = async () => {
    const l = await runLearner({
      orchestrator: orch.address, nats: natsUrl, workerId: 'learner-1', logger: silentLogger,
      reconnect: { initialDelayMs: 50, maxDelayMs: 200 }, ...opts.learner,
    });
    await l.ready;
    return l;
  };
  let learner = await start();
  const checkpointAt = async (version: number, expectDigest?: string) =>
    decodeCheckpoint((await store.get(version, expectDigest ? { expectDigest } : {})).bytes, { expectedShapes: shapes });
  return {
    config, nc, store,
    get orch() {
      return orch;
    },
    get learner() {
      return learner;
    },
    async train(b, timeoutMs = 60_000) {
      const from = orch.received.length;
      const digest = trainBatchDigest(b);
      await orch.send('learner-1', { train_batch: b });
      const m = await orch.next((m) => (m.train_result?.batch_id ?? m.task_error?.task_id) === b.batch_id, { from, timeoutMs });
      // the learner's digest is of the batch as it came: its tensors are views of the received message (the direct
      // codec aligns them, round 29), so a learner that wrote into one while training would answer another digest
      if (m.train_result) assert.equal(m.train_result.batch_digest, digest, `batch ${b.batch_id}: the learner's batch_digest is not the sent batch's`);
      return m;
    },
    checkpointAt,
    async savedAt(version) {
      const { announcement } = await store.get(version);
      const saved = await (await LearnerStateStore.open(nc, runId)).get(version, announcement.digest, (await checkpointAt(version)).params);
      if (!saved) throw new Error(`learner state of version ${version}: none stored`);
      return saved;
    },
    async restartLearner() {
      await learner.stop();
      await learner.done;
      learner = await start();
    },
    async restartOrchestrator() {
      const port = orch.server.port;
      await orch.close();
      orch = await startFakeOrchestrator({ runId, config: input, listen: `127.0.0.1:${port}` });
    },
    async close() {
      await learner.stop({ graceMs: 1000 });
      await orch.close();
      await nc.close();
    },
  };
}

/** What a rollout worker sends back for one GRPO batch: 2 images x G = 2 sampled from `params`. */
export interface GrpoSamples {
  images: Float32Array;
  actions: Float32Array;
  logpOld: Float32Array;
  advantages: Float32Array;
}

/** Images `seed`, `seed + 1` (each twice), rolled out with `params` and noise drawn from `seed`. */
export async function rollOut(config: RunConfig, params: TensorMap, seed: number): Promise<GrpoSamples> {
  const images = noisy(stackImages([seed, seed, seed + 1, seed + 1]));
  const noise = new Float32Array(N * PER);
  for (let i = 0; i < N; i++) noise.set(standardNormal(PER, seed * 10 + i), i * PER);
  const runner = await PolicyRunner.create(config);
  const out = await runner.run(params, images, noise, N);
  await runner.release();
  return { images, actions: out.action, logpOld: out.logp, advantages: Float32Array.of(1, -1, 0.5, -0.5) };
}

// Non-finite values allowed: the learner, not the test's encoder, must refuse them.
const f32 = (shape: number[], data: Float32Array) => encodeTensor({ dtype: 'float32', shape, data }, { allowNonFinite: true });

/** GRPO batch `seq` of run `runId` carrying `s`, sampled from policy version `version`. */
export function grpoBatch(runId: string, seq: number, s: GrpoSamples, version: number): TrainBatch {
  return {
    batch_id: `${runId}-b${seq}`, batch_seq: seq, kind: 'GRPO', lease_ms: 30_000,
    images: f32([N, 3, 16, 16], s.images), actions: f32([N, 3, 16, 16], s.actions),
    logp_old: f32([N], s.logpOld), advantages: f32([N], s.advantages),
    behaviour_versions: Array(N).fill(version), sample_ids: ['a', 'a', 'b', 'b'], group_indices: [0, 1, 0, 1],
  };
}

/** The weights one GRPO step on `s` gives from `params` + `optimizerState`, against KL reference `ref`, computed here. */
export async function grpoStepByHand(config: RunConfig, params: TensorMap, optimizerState: OptimizerStateFile['state'], ref: TensorMap, s: GrpoSamples): Promise<TensorMap> {
  // the trainer updates the map it is given in place: give it a copy
  const trainer = PolicyTrainer.create(config, cloneTensorMap(params), { optimizerState });
  const runner = await PolicyRunner.create(config);
  try {
    const refMean = (await runner.run(ref, s.images, new Float32Array(N * PER), N)).mean;
    await trainer.grpoStep({ n: N, images: s.images, actions: s.actions, logpOld: s.logpOld, advantages: s.advantages, refMean });
    return trainer.params;
  } finally {
    await runner.release();
    await trainer.release();
  }
}

/** Asserts two parameter sets equal bit for bit, naming the first parameter that differs. */
export function assertSameParams(a: TensorMap, b: TensorMap): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  const bytes = (t: Tensor) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  for (const [k, t] of a) assert.ok(bytes(t).equals(bytes(b.get(k)!)), `parameter ${k} differs`);
}
