// Dual-clip PPO (grpo.dualClip, docs/grpo.md "Dual clip"): for a negative advantage a loss term is at most
// c |A|, so a ratio above c passes no gradient; positive advantages and ratios below c are unchanged. Checked by
// hand on the reference loss, by finite differences, and the training graph (scalar and dense) against the reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, type RunConfig } from '../../lib/config/index.ts';
import { DUAL_CLIP_DEFAULT, grpoHyper, grpoLossReference, type LossReferenceInputs } from '../../lib/grpo/algorithm.ts';
import { LOG_STD } from '../../lib/models/policy.ts';
import { ssimMapSize } from '../../lib/models/ssim.ts';
import { PolicyTrainer } from '../../lib/models/trainer.ts';
import { standardNormal } from '../../lib/data/random.ts';
import { assertReferenceGradients } from '../helpers/loss-gradcheck.ts';
import { tinyLossReference, tinyRollout, TINY_H, TINY_N, TINY_PIX } from '../helpers/tiny-rollout.ts';

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

// One row of one element: mean 0, action 0, log sigma 0, so logp = -log(2 pi)/2 and r = exp(logp - logpOld).
function oneRow(A: number, ratio: number, dualClip?: number) {
  return grpoLossReference({
    n: 1, mean: [0.1], actions: [0.3], logStd: 0, logpOld: [-(0.2 ** 2) / 2 - HALF_LOG_2PI - Math.log(ratio)], advantages: [A], refMean: [0.1],
    hyper: { clipLow: 0.2, clipHigh: 0.2, beta: 0, ...(dualClip === undefined ? {} : { dualClip }) },
  });
}

test('dual clip by hand: A < 0 with ratio above c is bounded at c|A| with no gradient; otherwise PPO as before', () => {
  const c = DUAL_CLIP_DEFAULT;
  // A < 0, ratio 5 > c = 3: the term is c |A| = 3 * 0.5, no gradient (PPO alone: 5 * 0.5 = 2.5, gradient -A r dl)
  const bound = oneRow(-0.5, 5);
  assert.ok(Math.abs(bound.loss - c * 0.5) < 1e-12, `loss ${bound.loss}`);
  assert.equal(bound.dMean[0], 0);
  assert.equal(bound.dLogStd, 0);
  const ppoOnly = oneRow(-0.5, 5, 1e9);
  assert.ok(Math.abs(ppoOnly.loss - 2.5) < 1e-12, `PPO term without the dual clip ${ppoOnly.loss}`);
  // d loss / d mu = -A r dl/dmu, dl/dmu = (a - mu) / sigma^2 = 0.2: 0.5 * 5 * 0.2 = 0.5
  assert.ok(Math.abs(ppoOnly.dMean[0]! - 0.5) < 1e-12, `PPO gradient ${ppoOnly.dMean[0]}`);
  // A < 0, ratio 2 < c: unchanged (2 * 0.5 = 1, gradient 0.5 * 2 * 0.2 = 0.2)
  const below = oneRow(-0.5, 2);
  assert.ok(Math.abs(below.loss - 1) < 1e-12 && Math.abs(below.dMean[0]! - 0.2) < 1e-12, `A<0, r<c: ${below.loss} ${below.dMean[0]}`);
  // A > 0, ratio 5: the PPO clip already holds it at 1 + clipHigh with no gradient; the dual clip changes nothing
  const pos = oneRow(0.5, 5);
  assert.ok(Math.abs(pos.loss - -0.5 * 1.2) < 1e-12 && pos.dMean[0] === 0, `A>0, r>c: ${pos.loss} ${pos.dMean[0]}`);
  // A > 0, ratio 0.5 (below the clip range): -A r unclipped, gradient -A r dl/dmu = -0.5 * 0.5 * 0.2
  const posLow = oneRow(0.5, 0.5);
  assert.ok(Math.abs(posLow.loss - -0.25) < 1e-12 && Math.abs(posLow.dMean[0]! - -0.05) < 1e-12, `A>0, r<1: ${posLow.loss} ${posLow.dMean[0]}`);
  for (const [A, r] of [[0.5, 5], [0.5, 0.5], [-0.5, 2], [1.5, 1]]) {
    const a = oneRow(A!, r!);
    const b = oneRow(A!, r!, 1e9);
    assert.equal(a.loss, b.loss, `A ${A}, r ${r}: unchanged by the dual clip`);
    assert.equal(a.dMean[0], b.dMean[0]);
  }
});

test('dual clip: the reference gradient matches finite differences, rows bounded and not (scalar and dense)', () => {
  const n = 3;
  const P = 4;
  const base: LossReferenceInputs = {
    n, mean: Array.from(standardNormal(n * P, 1), (x) => 0.3 * x), actions: Array.from(standardNormal(n * P, 2), (x) => 0.3 * x), logStd: -0.5,
    // the rows' ratios are about exp(-1 - logpOld): row 0 far above c = 3, row 1 below it, row 2 below 1
    logpOld: [-3.5, -1.2, -0.3], advantages: [-0.8, -1.1, 0.6], refMean: Array.from(standardNormal(n * P, 3)),
    hyper: { clipLow: 0.2, clipHigh: 0.3, beta: 0.05, dualClip: 3 },
  };
  const dense: LossReferenceInputs = { ...base, logpOld: Array.from(standardNormal(n * P, 4), (x) => -1 + 1.5 * x), pixelAdvantages: Array.from(standardNormal(n * P, 5)) };
  for (const inputs of [base, dense]) {
    const r = grpoLossReference(inputs);
    const open = grpoLossReference({ ...inputs, hyper: { ...inputs.hyper, dualClip: 1e9 } });
    assert.notEqual(r.loss, open.loss, 'some term is bounded by the dual clip');
    assertReferenceGradients(inputs);
  }
  // scalar, without the KL term: row 0 (ratio about e^3 > 3, A < 0) has no gradient; rows 1 and 2 do
  const r = grpoLossReference({ ...base, hyper: { ...base.hyper, beta: 0 } });
  assert.ok(r.dMean.subarray(0, P).every((g) => g === 0), 'the bounded row passes no gradient');
  assert.ok(r.dMean.subarray(P).every((g) => g !== 0), 'the other rows do');
});

const tiny = (grpo: Record<string, unknown>): RunConfig =>
  parseConfig({ run: { id: 't', seed: 1 }, data: { size: 16 }, model: { width: 4, depth: 1, learnLogStd: true, logStd: -1 }, grpo: { groupSize: 4, ...grpo } });

for (const mode of ['scalar', 'dense'] as const) {
  test(`dual clip: the training graph equals the reference where it binds (${mode})`, async () => {
    const config = tiny({ advantageMode: mode });
    const [H, pix, n] = [TINY_H, TINY_PIX, TINY_N];
    const { params, images, roll } = await tinyRollout(config);
    // behaviour log-probs below the current ones by 0-2.5 nats: ratios up to e^2.5 = 12, above c = 3 in places
    const logpOld = mode === 'dense'
      ? Float32Array.from(roll.logpMap, (v, i) => v - 1.25 - 1.25 * Math.tanh(standardNormal(n * pix, 13)[i]!))
      : Float32Array.from(roll.logp, (v, i) => v - [2.5, 0.5, 2.5, 0.02][i]!);
    const advantages = Float32Array.from([-1.2, -0.7, 0.4, -1.5]);
    const h = ssimMapSize(H);
    const advantageMap = mode === 'dense' ? Float32Array.from(standardNormal(n * 3 * h * h, 14), (x) => 0.5 * x) : undefined;
    const refMean = roll.mean;
    const hyper = { clipLow: 0.2, clipHigh: 0.25, beta: 0, lr: 1e-4, dualClip: 3 };
    const trainer = PolicyTrainer.create(config, params);
    const batch = { n, images, actions: roll.action, logpOld, advantages, refMean, ...(advantageMap ? { advantageMap } : {}) };
    const out = await trainer.grpoForward(batch, hyper);
    const open = await trainer.grpoForward(batch, { ...hyper, dualClip: 1e6 });
    const ref = tinyLossReference({ params, roll, logpOld, advantages, refMean, hyper, ...(advantageMap ? { advantageMap } : {}) });
    const loss = out.loss!.data[0]!;
    assert.ok(Math.abs(loss - ref.loss) <= 1e-4 * Math.max(1, Math.abs(ref.loss)), `loss: graph ${loss}, reference ${ref.loss}`);
    assert.ok(loss < open.loss!.data[0]! - 0.1, `the dual clip binds: ${loss} against ${open.loss!.data[0]} without it`);
    const g = out[`grad.${LOG_STD}`]!.data[0]!;
    assert.ok(Math.abs(g - ref.dLogStd) <= 2e-3 * Math.max(1, Math.abs(ref.dLogStd)), `d loss / d log sigma: graph ${g}, reference ${ref.dLogStd}`);
    if (mode === 'scalar') {
      // row 0 (A < 0, ratio e^2.5) is bounded: the gradient is that of the batch without it
      const without = await trainer.grpoForward({ ...batch, advantages: Float32Array.from(advantages, (a, i) => (i === 0 ? 0 : a)) }, hyper);
      for (const name of Object.keys(out).filter((k) => k.startsWith('grad.'))) {
        const a = out[name]!.data;
        const b = without[name]!.data;
        a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) <= 1e-6 * Math.max(1, Math.abs(b[i]!)), `${name}[${i}]: ${v} vs ${b[i]} without the bounded row`));
      }
    }
    await trainer.release();
  });
}

test('grpo.dualClip: default 3, fed from the config, refused at or below 1 naming the key', () => {
  assert.equal(tiny({}).grpo.dualClip, DUAL_CLIP_DEFAULT);
  assert.equal(grpoHyper(tiny({ dualClip: 5 })).dualClip, 5);
  assert.throws(() => tiny({ dualClip: 1 }), /grpo\.dualClip/);
  assert.throws(() => tiny({ dualClip: 0.5 }), /grpo\.dualClip/);
});
