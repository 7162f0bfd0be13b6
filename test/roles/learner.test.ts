// The learner over real gRPC and a real nats-server: version 0 published at start, each batch applied once
// (duplicate / gap answered), one checkpoint per applied batch published before the ack, pruning that keeps
// the KL reference, non-finite batches skipped with the weights untouched, and a stop + restart that resumes
// bit-exactly (parameters, AdamW state, reference), plus a reconnect that re-Hellos with its position.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';
import { encodeTensor, type TrainBatch } from '../../lib/transport/index.ts';
import { decodeCheckpoint } from '../../lib/checkpoint/index.ts';
import { policySpecOf } from '../../lib/models/bundle.ts';
import { initPolicyParams } from '../../lib/models/policy.ts';
import { PolicyRunner } from '../../lib/models/runner.ts';
import { standardNormal } from '../../lib/data/random.ts';
import { silentLogger } from '../../lib/worker/index.ts';
import { runLearner } from '../../learner/index.ts';
import { batchLayout } from '../../lib/grpo/sampling.ts';
import { noisy, parsed, sftBatch as sftTestBatch, stackImages, startFakeOrchestrator, tinyConfig, waitFor } from './helpers.ts';
import { assertSameParams as sameParams, grpoBatch as grpoTestBatch, grpoStepByHand, N, PER, rollOut, startLearnerRig, type GrpoSamples, type LearnerRig } from './learner-harness.ts';

const RUN = 'learn-test';
// K = max(keepCheckpoints 2, maxStaleness 0 + 1) = 2; a visible learning rate so steps change the weights
const input = tinyConfig(RUN, { nats: { keepCheckpoints: 2 }, sft: { lr: 0.003 }, optim: { lr: 0.001 }, grpo: { groupSize: 2, clipLow: 0.2, clipHigh: 0.2, beta: 0.5 } });
const config = parsed(input);
const spec = policySpecOf(config);

let nats: TestNatsServer;
let rig: LearnerRig;

before(async () => {
  nats = await startNatsServer();
  rig = await startLearnerRig({ runId: RUN, input, natsUrl: nats.url });
});
after(async () => {
  await rig?.close();
  await nats?.stop();
});

const f32 = (shape: number[], data: Float32Array) => encodeTensor({ dtype: 'float32', shape, data });
const sftBatch = (seq: number): TrainBatch => sftTestBatch(RUN, seq);
const grpoBatch = (seq: number, d: GrpoSamples & { version: number }): TrainBatch => grpoTestBatch(RUN, seq, d, d.version);
/** Samples rolled out with `params` (behaviour version `version`), as rollout workers would. */
const grpoData = async (params: Parameters<typeof rollOut>[1], version: number, seed: number) => ({ ...(await rollOut(config, params, seed)), version });
const train = (b: TrainBatch) => rig.train(b);
const paramsAt = (version: number) => rig.checkpointAt(version);
/** The learner's own AdamW moments of `version` (never in the broadcast checkpoint). */
const optimizerAt = async (version: number) => (await rig.savedAt(version)).state;

test('version 0 from the seed; SFT batches applied once, published before the ack; duplicate and gap answered', async () => {
  assert.equal(rig.learner.state()!.version, 0);
  const v0 = await paramsAt(0);
  sameParams(v0.params, initPolicyParams(spec, config.run.seed));
  assert.equal(v0.meta.extra.last_batch_seq, '0');

  const r1 = await train(sftBatch(1));
  const t1 = r1.train_result!;
  assert.ok(t1, JSON.stringify(r1.task_error));
  assert.deepEqual([t1.applied, t1.skipped_reason, t1.version, t1.batch_seq], [true, '', 1, 1]);
  assert.ok(Number.isFinite(t1.loss) && t1.loss > 0 && t1.grad_norm > 0);
  // the acknowledged version is already in the store, verified by its digest
  assert.equal(t1.checkpoint!.version, 1);
  const c1 = await rig.store.get(1, { expectDigest: t1.checkpoint!.digest });
  assert.equal(Number(t1.checkpoint!.size), c1.bytes.length);
  const ck1 = decodeCheckpoint(c1.bytes);
  assert.deepEqual([ck1.meta.version, ck1.meta.step, ck1.meta.lastBatchId, ck1.meta.extra.last_batch_seq, ck1.optimizer?.step], [1, 1, `${RUN}-b1`, '1', undefined]);
  // the optimizer state stays with the learner: its own bucket, paired with this checkpoint's digest
  assert.equal((await optimizerAt(1)).step, 1);
  assert.equal(c1.announcement.meta.last_batch_seq, '1');
  // the batch layout its batch numbers name (review26c F3: an orchestrator without its run state compares it)
  assert.deepEqual(JSON.parse(ck1.meta.extra.batch_layout!), batchLayout(config));
  assert.equal(c1.announcement.meta.batch_layout, ck1.meta.extra.batch_layout);

  // the same batch again: acknowledged, not applied
  const dup = (await train(sftBatch(1))).train_result!;
  assert.deepEqual([dup.applied, dup.skipped_reason, dup.version, dup.checkpoint!.version], [false, 'duplicate', 1, 1]);
  // a gap: TaskError naming the expected seq, nothing changes
  const gap = (await train(sftBatch(3))).task_error!;
  assert.equal(gap.code, 'gap');
  assert.match(gap.message, /expected batch_seq 2 \(the last one handled is 1\), got 3/);
  assert.equal(rig.learner.state()!.version, 1);

  for (const seq of [2, 3]) assert.equal((await train(sftBatch(seq))).train_result!.version, seq);
  // K = 2; pruning runs right after the acknowledgement, off the critical path
  await waitFor(async () => JSON.stringify(await rig.store.versions()) === '[2,3]', 'old versions pruned');
  assert.equal((await rig.store.latest())!.version, 3);
  // the AdamW moments too: the newest two, written chunk by chunk as nats.js's object store reads them
  const optimNames = async () => (await (await rig.nc.jetstream().views.os('learner-state')).list()).filter((i) => !i.deleted).map((i) => i.name).sort();
  await waitFor(async () => JSON.stringify(await optimNames()) === `["${RUN}/optim-v0000000002","${RUN}/optim-v0000000003"]`, 'old optimizer states pruned');
  assert.equal((await optimizerAt(3)).step, 3);
  // a dense batch sent to a run configured for scalar advantages: refused, seq not consumed
  const d = await grpoData((await paramsAt(3)).params, 3, 1);
  const dense = { ...grpoBatch(4, d), advantage_map: f32([N, 3, 6, 6], new Float32Array(N * 108)) };
  const un = (await train(dense)).task_error!;
  assert.equal(un.code, 'unsupported');
  assert.match(un.message, /advantage_map: this run trains with grpo.advantageMode scalar/);
});

test('GRPO: the start version is the KL reference, kept through pruning; logp_mismatch ~ 0 on-policy; non-finite batches skipped, weights untouched', async () => {
  const v3 = (await paramsAt(3)).params;
  const r4 = (await train(grpoBatch(4, await grpoData(v3, 3, 1)))).train_result!;
  assert.deepEqual([r4.applied, r4.version], [true, 4]);
  assert.ok(r4.logp_mismatch < 1e-4, `logp_mismatch ${r4.logp_mismatch}`);
  assert.ok(Math.abs(r4.ratio_mean - 1) < 1e-4, `ratio_mean ${r4.ratio_mean}`);
  assert.equal(r4.kl, 0); // the first GRPO step starts at the reference
  const ck4 = await paramsAt(4);
  assert.equal(ck4.meta.extra.ref_version, '3');
  assert.equal((await optimizerAt(4)).step, 1, 'GRPO starts a fresh AdamW');

  // behaviour version 3 is now one version stale: it is not on-policy, so no mismatch is measured
  const stale = (await train(grpoBatch(5, await grpoData(v3, 3, 2)))).train_result!;
  assert.deepEqual([stale.applied, stale.version], [true, 5]);
  assert.ok(Number.isNaN(stale.logp_mismatch));
  assert.ok(stale.kl > 0, `kl ${stale.kl}`);
  await waitFor(async () => JSON.stringify(await rig.store.versions()) === '[3,4,5]', 'pruning to [3, 4, 5]: the reference v3 survives');

  const before5 = rig.learner.params()!;
  // NaN in the inputs: skipped before any graph runs
  const d6 = await grpoData((await paramsAt(5)).params, 5, 3);
  d6.advantages[2] = NaN;
  const r6 = (await train(grpoBatch(6, d6))).train_result!;
  assert.deepEqual([r6.applied, r6.skipped_reason, r6.version], [false, 'non_finite', 5]);
  // finite inputs whose step is not finite: advantages so large that the loss and gradients overflow (a logp_old so
  // low that every ratio overflowed did this until round 25; the log-ratio cap and the same-version check take those)
  const d7 = await grpoData((await paramsAt(5)).params, 5, 4);
  d7.advantages.fill(3e38);
  const r7 = (await train(grpoBatch(7, d7))).train_result!;
  assert.deepEqual([r7.applied, r7.skipped_reason, r7.version], [false, 'non_finite', 5]);
  sameParams(rig.learner.params()!, before5);
  assert.equal((await rig.store.latest())!.version, 5);
  assert.equal(rig.learner.state()!.lastBatchSeq, 7, 'a skipped seq counts as handled');
  assert.equal((await train(grpoBatch(7, d7))).train_result!.skipped_reason, 'duplicate');

  const text = await (await fetch(`${rig.learner.metricsUrl}/metrics`)).text();
  for (const re of [
    /recovery_grpo_policy_version\{run_id="learn-test",role="learner"\} 5/,
    /recovery_grpo_train_steps_total\{[^}]*kind="grpo"[^}]*\} 2/,
    /recovery_grpo_train_steps_total\{[^}]*kind="sft"[^}]*\} 3/,
    /recovery_grpo_nonfinite_steps_skipped_total\{run_id="learn-test",role="learner"\} 2/,
    /recovery_grpo_train_batches_total\{[^}]*outcome="duplicate"[^}]*\} [1-9]/,
    /recovery_grpo_logp_mismatch\{run_id="learn-test",role="learner"\} /,
    /recovery_grpo_checkpoint_publish_bytes_total\{run_id="learn-test",role="learner"\} [1-9]/,
    /recovery_grpo_clip_fraction\{/, /recovery_grpo_kl\{/, /recovery_grpo_grad_norm\{/, /recovery_grpo_loss\{[^}]*kind="grpo"/,
  ]) assert.match(text, re);
});

test('stop + restart resumes from the latest checkpoint bit-exactly and continues like an uninterrupted run', async () => {
  const before = rig.learner.state()!;
  const params = rig.learner.params()!;
  await rig.restartLearner();
  const now = rig.learner.state()!;
  assert.deepEqual(
    [now.version, now.step, now.optimizerStep, now.refVersion, now.lastBatchId],
    [before.version, before.step, before.optimizerStep, before.refVersion, `${RUN}-b5`],
  );
  // the skipped seqs 6 and 7 changed no weights (checkpoint v5 says 5) but were recorded before their acks
  assert.equal(now.lastBatchSeq, 7);
  assert.equal((await train(sftBatch(6))).train_result!.skipped_reason, 'duplicate');
  sameParams(rig.learner.params()!, params);
  const hello = (await rig.orch.session('learner-1')).hello;
  assert.equal(hello.policy_version, undefined, 'a fresh process learns its state only after Welcome');

  // the next step equals one computed from checkpoint v5 (params + AdamW state) against reference v3
  const v5 = await paramsAt(5);
  const d = await grpoData(v5.params, 5, 8);
  const expected = await grpoStepByHand(config, v5.params, await optimizerAt(5), (await paramsAt(3)).params, d);
  const r = (await train(grpoBatch(8, d))).train_result!;
  assert.deepEqual([r.applied, r.version], [true, 6]);
  sameParams(rig.learner.params()!, expected);
});

test('after the orchestrator restarts, the learner reconnects and says where it is in Hello', async () => {
  await rig.restartOrchestrator();
  const s = await rig.orch.session('learner-1');
  assert.equal(s.hello.policy_version, 6);
  assert.equal(s.hello.last_batch_seq, 8);
  await waitFor(() => rig.learner.isConnected(), 'the learner to be connected');
  const health = await fetch(`${rig.learner.metricsUrl}/health`);
  assert.equal(health.status, 200);
  assert.equal((await train(sftBatch(6))).train_result!.skipped_reason, 'duplicate');
});

test('a logp_old forged at the learner\'s version is excluded from the step and counted (review25c F2)', async () => {
  // 10 nats below the truth with advantage -1: before round 25 this row took the whole clipped-norm step
  const v6 = await paramsAt(6);
  const d = await grpoData(v6.params, 6, 9);
  d.advantages[1] = -1;
  const expected = await grpoStepByHand(config, v6.params, await optimizerAt(6), (await paramsAt(3)).params, { ...d, advantages: d.advantages.map((a, i) => (i === 1 ? 0 : a)) });
  d.logpOld[1]! -= 10;
  const r = (await train(grpoBatch(9, d))).train_result!;
  assert.deepEqual([r.applied, r.version], [true, 7]);
  // the TrainResult says which action was excluded, for the orchestrator to name its rollout worker
  assert.deepEqual(r.excluded_actions, [1]);
  sameParams(rig.learner.params()!, expected);
  assert.match(await (await fetch(`${rig.learner.metricsUrl}/metrics`)).text(), /recovery_grpo_logp_rows_excluded_total\{run_id="learn-test",role="learner"\} 1/);
});

test('dense advantages (grpo.advantageMode dense): per-element logp_old and SSIM advantage maps are trained on', async () => {
  const run = 'learn-dense';
  const denseInput = tinyConfig(run, { grpo: { groupSize: 2, advantageMode: 'dense', clipLow: 0.2, clipHigh: 0.2 }, optim: { lr: 0.001 } });
  const denseConfig = parsed(denseInput);
  const o = await startFakeOrchestrator({ runId: run, config: denseInput });
  const l = await runLearner({ orchestrator: o.address, nats: nats.url, workerId: 'learner-dense', logger: silentLogger });
  try {
    await l.ready;
    const p0 = l.params()!;
    const images = noisy(stackImages([1, 1, 2, 2]));
    const noise = new Float32Array(N * PER);
    for (let i = 0; i < N; i++) noise.set(standardNormal(PER, 40 + i), i * PER);
    const runner = await PolicyRunner.create(denseConfig);
    const out = await runner.run(p0, images, noise, N);
    await runner.release();
    const advMap = Float32Array.from({ length: N * 108 }, (_, k) => Math.sin(k) * 0.5);
    const batch: TrainBatch = {
      batch_id: `${run}-b1`, batch_seq: 1, kind: 'GRPO', lease_ms: 30_000,
      images: f32([N, 3, 16, 16], images), actions: f32([N, 3, 16, 16], out.action),
      logp_old: f32([N, 3, 16, 16], out.logpMap), advantages: f32([N], Float32Array.of(0.1, -0.1, 0.2, -0.2)),
      advantage_map: f32([N, 3, 6, 6], advMap), behaviour_versions: [0, 0, 0, 0],
    };
    const ask = async (b: TrainBatch) => {
      const from = o.received.length;
      await o.send('learner-dense', { train_batch: b });
      return o.next((m) => (m.train_result?.batch_id ?? m.task_error?.task_id) === b.batch_id, { from });
    };
    // without the maps: bad_input, nothing consumed
    const missing = (await ask({ ...batch, advantage_map: null })).task_error!;
    assert.equal(missing.code, 'bad_input');
    assert.match(missing.message, /advantage_map: is missing; this run trains with grpo.advantageMode dense/);
    const r = (await ask(batch)).train_result!;
    assert.deepEqual([r.applied, r.version], [true, 1]);
    assert.ok(r.logp_mismatch < 1e-4, `logp_mismatch ${r.logp_mismatch}`);
    assert.ok(Math.abs(r.ratio_mean - 1) < 1e-4);
    assert.ok(r.grad_norm > 0);
    assert.throws(() => sameParams(l.params()!, p0), /differs/);
  } finally {
    await l.stop();
    await o.close();
  }
});
