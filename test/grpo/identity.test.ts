// The identity member (grpo.identityAnchor, docs/grpo.md "Identity member"): its advantage against the sampled
// actions' statistics (hand-computed), the batch layout (first row of each group), the reference loss
// (hand-computed, finite differences) and the training graph against the reference (loss, log-sigma gradient,
// and the mean gradient through the head's bias, since mean = image + head).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, type RunConfig } from '../../lib/config/index.ts';
import { advantagesOf, compileAlgorithm, grpoLossReference, type LossReferenceInputs } from '../../lib/grpo/algorithm.ts';
import { denseAdvantages, groupAdvantages, spreadToPixels } from '../../lib/grpo/advantages.ts';
import { assembleGrpoBatch, type TrainableGroup } from '../../lib/grpo/batch.ts';
import { identityAction, rolloutNoiseSeed } from '../../lib/grpo/sampling.ts';
import { LOG_STD } from '../../lib/models/policy.ts';
import { gaussianWindow1d, ssimMapSize } from '../../lib/models/ssim.ts';
import { PolicyTrainer } from '../../lib/models/trainer.ts';
import { standardNormal } from '../../lib/data/random.ts';
import { tinyRollout, TINY_H, TINY_N, TINY_PIX } from '../helpers/tiny-rollout.ts';
import { decodeTrainBatch } from '../../learner/batch.ts';
import { encodeTensor, type TrainBatch__Output } from '../../lib/transport/index.ts';

const tiny = (grpo: Record<string, unknown> = {}, model: Record<string, unknown> = {}): RunConfig =>
  parseConfig({ run: { id: 't', seed: 1 }, data: { size: 16 }, model: { width: 4, depth: 1, ...model }, grpo: { groupSize: 3, ...grpo } });

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test('identity advantage (scalar): against the sampled actions\' mean and std, theirs unchanged', () => {
  // rewards 1, 2, 3: mean 2, population std sqrt(2/3)
  const std = Math.sqrt(2 / 3);
  const a = groupAdvantages([1, 2, 3], {}, 2.5);
  assert.ok(!('dropped' in a));
  close(a.identity!, 0.5 / (std + 1e-4), 1e-6, 'A_0 = (2.5 - 2) / (std + eps)');
  assert.deepEqual([...a.advantages], [...(groupAdvantages([1, 2, 3]) as { advantages: Float32Array }).advantages], 'sampled advantages unchanged');
  const low = groupAdvantages([1, 2, 3], {}, 0) as { identity: number };
  close(low.identity, -2 / (std + 1e-4), 1e-6, 'identity below the group: negative');
  assert.equal((groupAdvantages([1, 2, 3], {}, 100) as { identity: number }).identity, 5, 'clipped at advClip');
  close((groupAdvantages([1, 2, 3], { stdNormalize: false }, 2.5) as { identity: number }).identity, 0.5, 1e-12, 'Dr. GRPO: mean only');
  assert.equal((groupAdvantages([2, 2, 2], {}, 3) as { identity: number }).identity, 0, 'zero-variance group: 0 for the identity too');
});

test('identity advantage (dense): its map and scalar part centred on the sampled actions', () => {
  // three actions, maps of 2 windows, reward = 2 ssim + t
  const maps = [Float32Array.from([0.1, 0.3]), Float32Array.from([0.2, 0.2]), Float32Array.from([0.3, 0.4])];
  const other = [0.5, 0.1, 0.3];
  const rewards = maps.map((m, i) => 2 * ((m[0]! + m[1]!) / 2) + other[i]!);
  const idMap = Float32Array.from([0.4, 0.1]);
  const d = denseAdvantages(maps, rewards, other, 2, { consistencyTol: 1e-6 }, { ssimMap: idMap, reward: 2 * 0.25 + 0.2, otherTerm: 0.2 });
  assert.ok(!('dropped' in d));
  const mean = rewards.reduce((s, x) => s + x, 0) / 3;
  const std = Math.sqrt(rewards.reduce((s, x) => s + (x - mean) ** 2, 0) / 3);
  const s = std + 1e-4;
  // window means 0.2 and 0.3; t mean 0.3
  close(d.identity!.map[0]!, (2 * (0.4 - 0.2)) / s, 1e-5, 'D_0 window 0');
  close(d.identity!.map[1]!, (2 * (0.1 - 0.3)) / s, 1e-5, 'D_0 window 1');
  close(d.identity!.scalar, (0.2 - 0.3) / s, 1e-6, 'T_0');
  const plain = denseAdvantages(maps, rewards, other, 2, { consistencyTol: 1e-6 }) as { maps: Float32Array[]; scalar: Float32Array };
  assert.deepEqual(d.maps.map((m) => [...m]), plain.maps.map((m) => [...m]), 'sampled maps unchanged');
  assert.deepEqual([...d.scalar], [...plain.scalar]);
  assert.throws(() => denseAdvantages(maps, rewards, other, 2, { consistencyTol: 1e-6 }, { ssimMap: idMap, reward: 9, otherTerm: 0.2 }), /identity: reward 9/);
  // advClip: the identity's total mean_p D_0 + T_0 is clipped like its scalar advantage, D_0 and T_0 scaled together
  const c = denseAdvantages(maps, rewards, other, 2, { consistencyTol: 1e-6, advClip: 0.05 }, { ssimMap: idMap, reward: 2 * 0.25 + 0.2, otherTerm: 0.2 });
  assert.ok(!('dropped' in c));
  const A0 = (groupAdvantages(rewards, { advClip: 0.05 }, 2 * 0.25 + 0.2) as { identity: number }).identity;
  assert.equal(Math.abs(A0), 0.05, 'the scalar identity advantage hits the clip');
  close((c.identity!.map[0]! + c.identity!.map[1]!) / 2 + c.identity!.scalar, A0, 1e-6, 'clipped identity total');
  close(c.identity!.map[0]! / c.identity!.scalar, d.identity!.map[0]! / d.identity!.scalar, 1e-4, 'D_0 / T_0 kept');
});

test('advantagesOf: the identity member exactly when grpo.identityAnchor > 0; the schema refuses what it cannot serve', () => {
  const comps = [{ ssim: 0.5, clip_cos: 0.9 }, { ssim: 0.7, clip_cos: 0.2 }, { ssim: 0.6, clip_cos: 0.6 }];
  const on = compileAlgorithm(tiny({ advantageMode: 'scalar', identityAnchor: 2 }));
  const rewards = comps.map((c) => on.reward.evaluate(c));
  const idc = { ssim: 0.8, clip_cos: 0.9 };
  const a = advantagesOf(on, { components: comps, rewards, identity: { components: idc, reward: on.reward.evaluate(idc) } });
  assert.ok(a.kept);
  assert.equal(a.identity!.advantage, (groupAdvantages(rewards, {}, on.reward.evaluate(idc)) as { identity: number }).identity);
  assert.throws(() => advantagesOf(on, { components: comps, rewards }), /identityAnchor is 2 but the group has no identity member/);
  const off = compileAlgorithm(tiny({ advantageMode: 'scalar' }));
  assert.throws(() => advantagesOf(off, { components: comps, rewards, identity: { components: idc, reward: 1 } }), /identityAnchor is 0 but the group has identity member/);
  assert.throws(() => tiny({ identityAnchor: 1 }, { learnLogStd: true }), /grpo\.identityAnchor.*model\.learnLogStd/s);
  assert.throws(() => tiny({ identityAnchor: 1, advantageMode: 'scalar', multiRewardMode: 'normalize-then-sum' }), /grpo\.identityAnchor.*normalize-then-sum/s);
  assert.throws(() => tiny({ identityAnchor: -1 }), /identityAnchor/);
  assert.equal(tiny().grpo.identityAnchor, 0, 'off by default');
});

test('identityAction: the image plus sigma times the noise of the group\'s action 0', () => {
  const c = tiny({}, { logStd: Math.log(0.02) });
  const image = Float32Array.from(standardNormal(12, 3), (x) => 0.5 + 0.1 * x);
  const a = identityAction(c, 'c7:img', image);
  const noise = standardNormal(12, rolloutNoiseSeed(1, 'c7:img', 0));
  for (let i = 0; i < 12; i++) close(a[i]!, image[i]! + 0.02 * noise[i]!, 1e-6, `element ${i}`);
});

test('assembleGrpoBatch: the identity member rides on the first row of each group', () => {
  const pix = 3 * 16 * 16;
  const L = 3 * ssimMapSize(16) ** 2;
  const group = (id: string, adv: number): TrainableGroup => ({
    sampleId: id, image: new Float32Array(pix), actions: [new Float32Array(pix), new Float32Array(pix)], logps: [0, 0], versions: [1, 1],
    logpMaps: [new Float32Array(pix), new Float32Array(pix)], rewards: [0, 1], components: [{ ssim: 0, clip_cos: 0 }, { ssim: 1, clip_cos: 0 }],
    advantages: Float32Array.from([-1, 1]), advantageMaps: [new Float32Array(L), new Float32Array(L)],
    identity: { advantage: adv, map: new Float32Array(L).fill(adv) },
  });
  const b = assembleGrpoBatch([group('a', 0.5), group('b', -2)], 16, true);
  assert.deepEqual([...b.identityAdvantages!], [0.5, 0, -2, 0]);
  assert.deepEqual([0, 1, 2, 3].map((i) => b.identityAdvantageMap![i * L + 7]), [0.5, 0, -2, 0]);
  const { identity: _drop, ...plain } = group('c', 1);
  assert.throws(() => assembleGrpoBatch([group('a', 0.5), plain], 16, true), /group c has no identity member/);
  assert.equal(assembleGrpoBatch([plain], 16, true).identityAdvantages, undefined, 'no identity member: no tensors');
});

test('reference loss with the identity member: hand-computed, and its gradients match finite differences', () => {
  // n = 1, P = 2, sigma = 0.5; x - mu = 0.25 (z = 0.5, inside the Huber threshold) and 1.5 (z = 3, outside)
  const logStd = Math.log(0.5);
  const bare: LossReferenceInputs = {
    n: 1, mean: [0.5, 0], actions: [0.5, 0], logStd, logpOld: [-10], advantages: [0], refMean: [0.5, 0],
    hyper: { clipLow: 0.2, clipHigh: 0.2, beta: 0, identityAnchor: 2 },
  };
  const r = grpoLossReference({ ...bare, identity: { images: [0.75, 1.5], advantages: [0.4] } });
  // h(0.5) = 0.125, h(3) = 3 - 0.5 = 2.5; mean_e relu(A) h = 0.4 * 2.625 / 2
  close(r.identityLoss, (0.4 * 2.625) / 2, 1e-12, 'identity loss');
  close(r.loss, 2 * r.identityLoss, 1e-12, 'weighted by lambda, the rest 0 (advantage 0, beta 0)');
  // d/dmu_e = -lambda A clamp(z) / (sigma P): -2 * 0.4 * 0.5 / (0.5 * 2), -2 * 0.4 * 1 / (0.5 * 2)
  close(r.dMean[0]!, -0.4, 1e-12, 'dMean inside');
  close(r.dMean[1]!, -0.8, 1e-12, 'dMean outside: bounded');
  const neg = grpoLossReference({ ...bare, identity: { images: [0.75, 1.5], advantages: [-0.4] } });
  assert.equal(neg.identityLoss, 0, 'a negative identity advantage adds nothing (relu)');
  assert.deepEqual([...neg.dMean], [0, 0]);

  const n = 2;
  const P = 5;
  const base: LossReferenceInputs = {
    n, mean: Array.from(standardNormal(n * P, 1)), actions: Array.from(standardNormal(n * P, 2)), logStd: -0.5,
    logpOld: Array.from(standardNormal(n * P, 4), (x) => -1.5 + 0.3 * x), advantages: [0.8, -1.1], refMean: Array.from(standardNormal(n * P, 3)),
    pixelAdvantages: Array.from(standardNormal(n * P, 5)), hyper: { clipLow: 0.2, clipHigh: 0.3, beta: 0.05, identityAnchor: 1.5 },
    identity: { images: Array.from(standardNormal(n * P, 6)), advantages: [0.3, 0], pixelAdvantages: Array.from(standardNormal(n * P, 7)) },
  };
  const g = grpoLossReference(base);
  assert.ok(g.identityLoss > 0);
  const h = 1e-6;
  for (let k = 0; k < n * P; k++) {
    const at = (d: number) => grpoLossReference({ ...base, mean: Array.from(base.mean, (v, i) => (i === k ? v + d : v)) }).loss;
    close((at(h) - at(-h)) / (2 * h), g.dMean[k]!, 1e-6, `dMean[${k}]`);
  }
  const fdS = (grpoLossReference({ ...base, logStd: base.logStd + h }).loss - grpoLossReference({ ...base, logStd: base.logStd - h }).loss) / (2 * h);
  close(fdS, g.dLogStd, 1e-6, 'dLogStd');
});

for (const mode of ['scalar', 'dense'] as const) {
  test(`the training graph with the identity term equals the reference (${mode})`, async () => {
    // learnLogStd, so the graph reports d loss / d log sigma too; the schema refuses it with the identity member
    // (its action needs a fixed sigma), so the anchor is set after loading: this checks the graph, not a run.
    const loaded = tiny({ advantageMode: mode }, { learnLogStd: true, logStd: -4 });
    const config: RunConfig = { ...loaded, grpo: { ...loaded.grpo, identityAnchor: 1.5 } };
    const [H, pix, n] = [TINY_H, TINY_PIX, TINY_N];
    const { params, images, roll } = await tinyRollout(config);
    const logpOld = mode === 'dense' ? roll.logpMap : roll.logp;
    const advantages = Float32Array.from([1.2, -0.7, 0.4, -1.5]);
    const h = ssimMapSize(H);
    const advantageMap = mode === 'dense' ? Float32Array.from(standardNormal(n * 3 * h * h, 14), (x) => 0.5 * x) : undefined;
    // groups of 2 rows: the identity's advantage on rows 0 and 2
    const identityAdvantages = Float32Array.from([0.9, 0, mode === 'dense' ? -0.2 : 0.3, 0]);
    const identityAdvantageMap = mode === 'dense'
      ? Float32Array.from(standardNormal(n * 3 * h * h, 16), (x, i) => (Math.floor(i / (3 * h * h)) % 2 === 0 ? 2 * x : 0))
      : undefined;
    const refMean = Float32Array.from(roll.mean, (v, i) => v + 0.05 * standardNormal(n * pix, 15)[i]!);
    const hyper = { clipLow: 0.2, clipHigh: 0.25, beta: 0.3, lr: 1e-4, identityAnchor: 1.5 };
    const trainer = PolicyTrainer.create(config, params);
    const out = await trainer.grpoForward({
      n, images, actions: roll.action, logpOld, advantages, refMean, identityAdvantages,
      ...(advantageMap ? { advantageMap, identityAdvantageMap } : {}),
    }, hyper);
    await trainer.release();
    const win = gaussianWindow1d();
    const spread = (m: Float32Array) => Array.from({ length: n }, (_, i) => [...spreadToPixels(m.subarray(i * 3 * h * h, (i + 1) * 3 * h * h), 3, h, h, win)]).flat();
    const ref = grpoLossReference({
      n, mean: roll.mean, actions: roll.action, logStd: params.get(LOG_STD)!.data[0]!, logpOld, advantages, refMean, hyper,
      ...(advantageMap ? { pixelAdvantages: spread(advantageMap) } : {}),
      identity: { images, advantages: identityAdvantages, ...(identityAdvantageMap ? { pixelAdvantages: spread(identityAdvantageMap) } : {}) },
    });
    // the images lie within a few sigma of the mean: both Huber branches are exercised
    const z = Array.from(images, (x, i) => Math.abs(x - roll.mean[i]!) / Math.exp(-4));
    assert.ok(z.some((v) => v < 1) && z.some((v) => v > 1), 'both sides of the Huber threshold');
    close(out.identity_loss!.data[0]!, ref.identityLoss, 1e-4 * Math.max(1, ref.identityLoss), 'identity loss');
    assert.ok(ref.identityLoss > 0);
    const loss = out.loss!.data[0]!;
    close(loss, ref.loss, 1e-4 * Math.max(1, Math.abs(ref.loss)), 'loss');
    close(out[`grad.${LOG_STD}`]!.data[0]!, ref.dLogStd, 2e-3 * Math.max(1, Math.abs(ref.dLogStd)), 'd loss / d log sigma');
    // mean = image + head(...): d loss / d head.bias[c] is the sum of d loss / d mean over channel c's elements
    const gb = out['grad.head.bias']!.data;
    for (let c = 0; c < 3; c++) {
      let s = 0;
      for (let i = 0; i < n; i++) for (let e = 0; e < H * H; e++) s += ref.dMean[i * pix + c * H * H + e]!;
      close(gb[c]!, s, 2e-3 * Math.max(1, Math.abs(s)), `d loss / d head.bias[${c}]`);
    }
  });
}

test('decodeTrainBatch: the identity fields are required exactly when the run has the identity member', () => {
  const S = 11;
  const n = 2;
  const pix = 3 * S * S;
  const t = (data: Float32Array, shape: number[]) => encodeTensor({ dtype: 'float32', shape, data });
  const base = {
    batch_id: 'b', batch_seq: 3, kind: 'GRPO', lease_ms: 1000,
    images: t(new Float32Array(n * pix).fill(0.5), [n, 3, S, S]), actions: t(new Float32Array(n * pix), [n, 3, S, S]),
    logp_old: t(new Float32Array(n), [n]), advantages: t(Float32Array.from([1, -1]), [n]),
    behaviour_versions: [0, 0], sample_ids: ['a', 'a'], group_indices: [0, 1],
  };
  const withId = { ...base, identity_advantages: t(Float32Array.from([0.7, 0]), [n]) } as unknown as TrainBatch__Output;
  const d = decodeTrainBatch(withId, { height: S, width: S, identity: true });
  assert.ok(d.kind === 'grpo');
  assert.deepEqual([...d.identityAdvantages!], [Math.fround(0.7), 0]);
  assert.throws(() => decodeTrainBatch(base as unknown as TrainBatch__Output, { height: S, width: S, identity: true }), /identity_advantages is missing/);
  assert.throws(() => decodeTrainBatch(withId, { height: S, width: S, identity: false }), /without an identity member/);
  const wrong = { ...base, identity_advantages: t(Float32Array.from([0.7, 0, 1]), [3]) } as unknown as TrainBatch__Output;
  assert.throws(() => decodeTrainBatch(wrong, { height: S, width: S, identity: true }), /identity_advantages/);
});
