// The pipeline's training-row layout for the flow family (flowRowsOf via assembleGrpoBatch, rowFeeds,
// FlowRunner.referenceMean, FlowTrainer.grpoForward) with two groups of different images, a 2-step window,
// distinct advantages and a reference that differs from the policy: every row must carry its own action's
// advantage, image and states. Checked against the test's own records, not against the batch, so a row
// given another row's advantage or image fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TensorMap } from '../../lib/checkpoint/tensors.ts';
import { parseConfig } from '../../lib/config/index.ts';
import { compileAlgorithm, grpoHyper } from '../../lib/grpo/algorithm.ts';
import { assembleGrpoBatch, type TrainableGroup } from '../../lib/grpo/batch.ts';
import { rollFlowGroup } from '../helpers/flow-group.ts';
import { FlowRunner, FlowTrainer, type FlowStepRecord } from '../../lib/flow/family.ts';
import { stepCoefficients } from '../../lib/flow/sampler.ts';
import { initialParamsOf } from '../../lib/models/bundle.ts';

/** Every tensor moved off its initial values (a fresh head is zero), differently per `s`. */
function perturb(p: TensorMap, s: number): TensorMap {
  return new Map([...p].map(([k, t]) => [k, { shape: t.shape, data: t.data.map((v, i) => v + 0.05 * Math.sin(i * 1.7 + s + k.length)) }]));
}

test('flow training rows: each row carries its own action advantage and image; policy terms are -A r and each row KL is its one-row recomputation', async () => {
  const c = parseConfig({
    data: { size: 12, source: { kind: 'procedural', count: 16 } },
    model: { family: 'flow', arch: 'resnet', width: 4, depth: 1 },
    flow: { steps: 6, evalSteps: 3, shift: 1, timeFrequencies: 2, timeWidth: 4, sde: { window: { size: 2, start: 1 } } },
    grpo: { groupSize: 3, samplesPerBatch: 2, steps: 2, beta: 0.01, advantageMode: 'scalar' },
    reward: { expression: 'ssim', weights: {} },
  });
  const H = c.data.size;
  const pix = 3 * H * H;
  const G = c.grpo.groupSize;
  const params = perturb(initialParamsOf(c), 1);
  const ref = perturb(params, 2);
  const runner = await FlowRunner.create(c);
  const trainer = FlowTrainer.create(c, params);
  const algo = compileAlgorithm(c);
  const groups: TrainableGroup[] = [];
  // What each action (batch order: group-major) should carry, from the test's own records.
  const expected: Array<{ image: Float32Array; advantage: number; steps: FlowStepRecord[] }> = [];
  for (const [gi, id] of ['s0', 's1'].entries()) {
    const image = Float32Array.from({ length: pix }, (_, i) => ((i * (gi + 3)) % 11) / 11);
    const components = Array.from({ length: G }, (_, a) => ({ ssim: [[0.1, 0.5, 0.2], [0.3, 0, 0.9]][gi]![a]!, clip_cos: 0 }));
    const { group, roll } = await rollFlowGroup(c, runner, params, algo, id, image, components);
    groups.push(group);
    for (let a = 0; a < G; a++) expected.push({ image, advantage: group.advantages[a]!, steps: roll.steps[a]! });
  }
  // Distinct advantages, so that a row given another action's advantage is seen.
  assert.equal(new Set(expected.map((e) => e.advantage)).size, expected.length);
  const batch = assembleGrpoBatch(groups, H, false);
  const f = batch.flow!;
  assert.equal(f.rows, 2 * G * 2, 'one row per (action, trained step)');
  const refMean = await runner.referenceMean(ref, { ...batch, flow: f });
  const out = await trainer.grpoForward({ ...batch, flow: f, refMean }, grpoHyper(c));
  let k = 0;
  for (const [i, e] of expected.entries()) {
    for (const s of e.steps) {
      assert.equal(f.actionIndex[k], i, `row ${k}: action-major order`);
      assert.equal(f.stepIndex[k], s.index);
      assert.deepEqual(f.x.subarray(k * pix, (k + 1) * pix), s.xBefore, `row ${k}: its action's state`);
      const r = out.ratio.data[k]!;
      assert.ok(Math.abs(r - 1) < 1e-5, `row ${k}: the first pass is on-policy (ratio ${r})`);
      const term = out.policy_terms.data[k]!;
      assert.ok(Math.abs(term + e.advantage * r) < 1e-6, `row ${k} (action ${i}, step ${s.index}): policy term ${term}, -A r = ${-e.advantage * r}`);
      // The row's KL from a one-row batch of its own image and state, under both parameter sets.
      const one = {
        n: 1, images: e.image, advantages: Float32Array.of(0),
        flow: {
          rows: 1, actionIndex: Int32Array.of(0), stepIndex: Int32Array.of(s.index), t: Float32Array.of(s.t), tNext: Float32Array.of(s.tNext),
          a: Float32Array.of(s.a), x: s.xBefore, xNext: s.xAfter, logpOld: Float32Array.of(s.logp),
        },
      };
      const pm = await runner.referenceMean(params, one);
      const rm = await runner.referenceMean(ref, one);
      const std = stepCoefficients(c.flow.sde.type, s.t, s.tNext, s.a).std;
      let m = 0;
      for (let j = 0; j < pix; j++) m += (pm[j]! - rm[j]!) ** 2;
      const kl = m / pix / (2 * std * std);
      assert.ok(kl > 0, 'the reference differs from the policy');
      assert.ok(Math.abs(out.kl_rows.data[k]! / kl - 1) < 1e-4, `row ${k} (action ${i}, step ${s.index}): KL ${out.kl_rows.data[k]} vs its own ${kl}`);
      k++;
    }
  }
  assert.equal(k, f.rows);
  await runner.release();
  await trainer.release();
});
