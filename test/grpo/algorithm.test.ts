// lib/grpo/algorithm.ts: the variant each setting selects, the configurations refused at load, the GRPO
// phase start, and the training graph checked against the plain-TypeScript reference loss (value, and the
// gradient with respect to log sigma; the reference's gradient with respect to the mean by finite differences).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, type RunConfig } from '../../lib/config/index.ts';
import { advantagesOf, compileAlgorithm, grpoHyper, needsReferenceForward, startGrpoPhase, type LossReferenceInputs } from '../../lib/grpo/algorithm.ts';
import { groupAdvantages, multiRewardGroupAdvantages } from '../../lib/grpo/advantages.ts';
import { initPolicyParams, LOG_STD } from '../../lib/models/policy.ts';
import { policySpecOf } from '../../lib/models/bundle.ts';
import { ssimMapSize } from '../../lib/models/ssim.ts';
import { PolicyTrainer } from '../../lib/models/trainer.ts';
import { standardNormal } from '../../lib/data/random.ts';
import { assertReferenceGradients } from '../helpers/loss-gradcheck.ts';
import { tinyLossReference, tinyRollout, TINY_H, TINY_N, TINY_PIX } from '../helpers/tiny-rollout.ts';

const tiny = (grpo: Record<string, unknown> = {}, model: Record<string, unknown> = {}): RunConfig =>
  parseConfig({ run: { id: 't', seed: 1 }, data: { size: 16 }, model: { width: 4, depth: 1, ...model }, grpo: { groupSize: 4, ...grpo } });

const comps = [{ ssim: 0.5, clip_cos: 0.9 }, { ssim: 0.7, clip_cos: 0.2 }, { ssim: 0.6, clip_cos: 0.6 }, { ssim: 0.4, clip_cos: 0.95 }];

test('advantagesOf: each setting selects its variant, computed by the advantage functions', () => {
  const scalar = compileAlgorithm(tiny({ advantageMode: 'scalar' }));
  assert.equal(scalar.variant, 'scalar');
  const rewards = comps.map((c) => scalar.reward.evaluate(c));
  const a = advantagesOf(scalar, { components: comps, rewards });
  assert.ok(a.kept);
  assert.deepEqual([...a.advantages], [...(groupAdvantages(rewards) as { advantages: Float32Array }).advantages]);

  const dr = advantagesOf(compileAlgorithm(tiny({ advantageMode: 'scalar', stdNormalize: false })), { components: comps, rewards });
  assert.ok(dr.kept);
  assert.ok(Math.abs(dr.advantages[0]! - (rewards[0]! - rewards.reduce((s, x) => s + x, 0) / 4)) < 1e-6, 'Dr. GRPO: only the mean is subtracted');

  const gdpo = compileAlgorithm(tiny({ advantageMode: 'scalar', multiRewardMode: 'normalize-then-sum' }));
  assert.equal(gdpo.variant, 'gdpo');
  const g = advantagesOf(gdpo, { components: comps, rewards });
  const terms = comps.map((c) => gdpo.terms!.terms.map((t) => t.evaluate(c)));
  assert.ok(g.kept);
  assert.deepEqual([...g.advantages], [...(multiRewardGroupAdvantages(terms, gdpo.terms!.terms.map((t) => t.weight), 'normalize-then-sum') as { advantages: Float32Array }).advantages]);

  const same = Array(4).fill({ ssim: 0.5, clip_cos: 0.5 });
  const sameRewards = same.map((c) => scalar.reward.evaluate(c));
  const zero = advantagesOf(scalar, { components: same, rewards: sameRewards });
  assert.ok(zero.kept && zero.advantages.every((x) => x === 0), 'zero variance kept: zero advantages');
  const dapo = advantagesOf(compileAlgorithm(tiny({ advantageMode: 'scalar', dropZeroVarianceGroups: true })), { components: same, rewards: sameRewards });
  assert.equal(dapo.kept, false, 'DAPO: dropped');

  const dense = compileAlgorithm(tiny({ advantageMode: 'dense' }));
  assert.equal(dense.variant, 'dense');
  const L = 3 * ssimMapSize(16) ** 2;
  const maps = comps.map((c) => new Float32Array(L).fill(c.ssim));
  const d = advantagesOf(dense, { components: comps, rewards, ssimMaps: maps });
  assert.ok(d.kept && d.advantageMaps!.length === 4);
  assert.throws(() => advantagesOf(dense, { components: comps, rewards }), /0 SSIM maps, expected 4/);
});

test('the schema refuses impossible algorithm settings at load, naming the fields', () => {
  assert.throws(() => tiny({ advantageMode: 'dense', multiRewardMode: 'normalize-then-sum' }), /grpo\.multiRewardMode.*normalize-then-sum cannot be combined with grpo\.advantageMode dense/s);
  assert.throws(() => parseConfig({ reward: { expression: 'ssim * ssim', weights: {} }, grpo: { advantageMode: 'dense' } }), /reward\.expression.*cannot serve grpo\.advantageMode dense/s);
  assert.throws(() => parseConfig({ reward: { expression: 'ssim +* clip_cos', weights: {} } }), /reward\.expression.*does not compile/s);
  assert.doesNotThrow(() => tiny({ advantageMode: 'scalar', multiRewardMode: 'normalize-then-sum' }));
});

test('startGrpoPhase: a frozen copy of the parameters, and AdamW starts afresh', async () => {
  const config = tiny();
  const params = initPolicyParams(policySpecOf(config), 3);
  const trainer = PolicyTrainer.create(config, params);
  const grads = new Map([...params].map(([k, t]) => [k, { shape: t.shape, data: t.data.map(() => 0.1) }]));
  trainer.optimizer.step(grads);
  assert.equal(trainer.optimizer.stepCount, 1);
  const ref = startGrpoPhase(params, trainer.optimizer);
  assert.equal(trainer.optimizer.stepCount, 0);
  assert.ok([...trainer.optimizer.exportState().m.values()].every((t) => t.data.every((x) => x === 0)));
  const [name, t] = [...params].find(([, t]) => t.data.length > 1)!;
  t.data[0]! += 1;
  assert.notEqual(ref.get(name)!.data[0], t.data[0], 'the reference is a copy');
  assert.equal(needsReferenceForward({ beta: 0 }), false);
  assert.equal(needsReferenceForward(grpoHyper(config)), true);
  await trainer.release();
});

test('reference loss: its mean-gradient matches finite differences', () => {
  const n = 2;
  const P = 5;
  const base: LossReferenceInputs = {
    n, mean: Array.from(standardNormal(n * P, 1)), actions: Array.from(standardNormal(n * P, 2)), logStd: -0.5,
    logpOld: [-1.6, -1.4], advantages: [0.8, -1.1], refMean: Array.from(standardNormal(n * P, 3)),
    hyper: { clipLow: 0.2, clipHigh: 0.3, beta: 0.05 },
  };
  for (const inputs of [base, { ...base, logpOld: Array.from(standardNormal(n * P, 4), (x) => -1.5 + 0.3 * x), pixelAdvantages: Array.from(standardNormal(n * P, 5)) }]) {
    assertReferenceGradients(inputs);
  }
});

for (const mode of ['scalar', 'dense'] as const) {
  test(`the training graph's loss and log-sigma gradient equal the reference (${mode})`, async () => {
    const config = tiny({ advantageMode: mode }, { learnLogStd: true, logStd: -1 });
    const [H, pix, n] = [TINY_H, TINY_PIX, TINY_N];
    const { params, images, roll } = await tinyRollout(config);
    // behaviour log-probs a little off the current ones, so ratios fall both inside and outside the clip range
    const logpOld = mode === 'dense'
      ? Float32Array.from(roll.logpMap, (v, i) => v + 0.3 * standardNormal(n * pix, 13)[i]!)
      : Float32Array.from(roll.logp, (v, i) => v + [0.25, -0.25, 0.01, -0.02][i]!);
    const advantages = Float32Array.from([1.2, -0.7, 0.4, -1.5]);
    const h = ssimMapSize(H);
    const advantageMap = mode === 'dense' ? Float32Array.from(standardNormal(n * 3 * h * h, 14), (x) => 0.5 * x) : undefined;
    const refMean = Float32Array.from(roll.mean, (v, i) => v + 0.05 * standardNormal(n * pix, 15)[i]!);
    const hyper = { clipLow: 0.2, clipHigh: 0.25, beta: 0.3, lr: 1e-4 };
    const trainer = PolicyTrainer.create(config, params);
    const out = await trainer.grpoForward({ n, images, actions: roll.action, logpOld, advantages, refMean, ...(advantageMap ? { advantageMap } : {}) }, hyper);
    await trainer.release();
    const ref = tinyLossReference({ params, roll, logpOld, advantages, refMean, hyper, ...(advantageMap ? { advantageMap } : {}) });
    const clipped = out.clip_fraction!.data[0]!;
    assert.ok(clipped > 0 && clipped < 1, `the clip is exercised (clip fraction ${clipped})`);
    const loss = out.loss!.data[0]!;
    assert.ok(Math.abs(loss - ref.loss) <= 1e-4 * Math.max(1, Math.abs(ref.loss)), `loss: graph ${loss}, reference ${ref.loss}`);
    assert.ok(Math.abs(out.kl!.data[0]! - ref.kl) <= 1e-4 * Math.max(1, ref.kl), `kl: graph ${out.kl!.data[0]}, reference ${ref.kl}`);
    const g = out[`grad.${LOG_STD}`]!.data[0]!;
    assert.ok(Math.abs(g - ref.dLogStd) <= 2e-3 * Math.max(1, Math.abs(ref.dLogStd)), `d loss / d log sigma: graph ${g}, reference ${ref.dLogStd}`);
  });
}
