// grpo.ema in the learner (lib/grpo/weight-average.ts): the average starts at the version GRPO starts from,
// takes one update per applied GRPO batch, is stored beside the AdamW moments of every version (so a stopped and
// restarted learner continues it), and the run's last GRPO batch (seq sft.steps + grpo.steps) publishes it in
// place of the trained weights. Checked against the average computed by hand from the published versions.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';
import type { TensorMap } from '../../lib/checkpoint/index.ts';
import { parsed, sftBatch as sftTestBatch, tinyConfig } from './helpers.ts';
import { grpoBatch, grpoStepByHand, rollOut, startLearnerRig, type LearnerRig } from './learner-harness.ts';

const RUN = 'learn-average';
const D = 0.5;
// SFT 1 batch, GRPO 3 (seqs 2-4; seq 4 is the last and publishes the average); no warm-up: decay D throughout
const input = tinyConfig(RUN, { sft: { lr: 0.003, steps: 1 }, optim: { lr: 0.003 }, grpo: { groupSize: 2, clipLow: 0.2, clipHigh: 0.2, beta: 0.5, steps: 3, ema: D } });
const config = parsed(input);

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

const train = (b: Parameters<LearnerRig['train']>[0]) => rig.train(b);
const paramsAt = async (version: number) => (await rig.checkpointAt(version)).params;
const savedAt = (version: number) => rig.savedAt(version);
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
    const r = (await train(grpoBatch(RUN, seq, await rollOut(config, await paramsAt(v), seq), v))).train_result!;
    assert.deepEqual([r.applied, r.version], [true, seq]);
  }
  const [v1, v2, v3] = [await paramsAt(1), await paramsAt(2), await paramsAt(3)];
  const s3 = await savedAt(3);
  assert.equal(s3.average?.updates, 2);
  assert.ok(maxDiff(s3.average!.shadow, byHand([v1, v2, v3])) < 1e-6, 'the stored average is the EMA of v1 (start), v2, v3');
  assert.ok(maxDiff(v3, byHand([v1, v2, v3])) > 1e-4, 'before the last batch the published weights are the trained ones');

  // restart: the average comes back from the store and the last batch (seq 4) publishes it
  await rig.restartLearner();
  const d = await rollOut(config, v3, 4);
  // the trained weights of seq 4, as the learner computes them (from v3's moments, against the reference v1)
  const raw4 = await grpoStepByHand(config, v3, s3.state, v1, d);
  const r = (await train(grpoBatch(RUN, 4, d, 3))).train_result!;
  assert.deepEqual([r.applied, r.version], [true, 4]);
  const v4 = await paramsAt(4);
  const want = byHand([v1, v2, v3, raw4]);
  assert.ok(maxDiff(v4, want) < 1e-6, `the final version is the average (max diff ${maxDiff(v4, want)})`);
  assert.ok(maxDiff(raw4, want) > 1e-4, 'and not the trained weights');
  assert.equal((await savedAt(4)).average?.updates, 3);
});
