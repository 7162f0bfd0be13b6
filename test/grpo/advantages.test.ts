import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  denseAdvantages, groupAdvantages, meanStd, multiRewardGroupAdvantages, spreadToPixels,
  type DenseAdvantages, type DroppedGroup, type GroupAdvantages,
} from '../../lib/grpo/advantages.ts';
import { decomposeForDense } from '../../lib/grpo/reward-expression.ts';

function closeAll(actual: ArrayLike<number>, expected: readonly number[], tol = 1e-6, what = ''): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol * Math.max(1, Math.abs(expected[i]!)), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}
function kept(r: GroupAdvantages | DroppedGroup): GroupAdvantages {
  assert.ok('advantages' in r, `expected advantages, got ${JSON.stringify(r)}`);
  return r;
}
function keptDense(r: DenseAdvantages | DroppedGroup): DenseAdvantages {
  assert.ok('maps' in r, `expected dense advantages, got ${JSON.stringify(r)}`);
  return r;
}
/** mulberry32: a small seeded PRNG for reproducible test data. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('population std, as np.std', () => {
  const { mean, std } = meanStd([1, 2, 3, 4]);
  assert.equal(mean, 2.5);
  assert.equal(std, Math.sqrt(1.25)); // np.std([1,2,3,4]) = 1.118033988749895, not the sample std 1.29
});

test('Flow-GRPO advantages, hand-computed', () => {
  // mean 2.5, std sqrt(1.25) = 1.118033988749895, A = (r - 2.5) / 1.118133988749895
  const a = kept(groupAdvantages([1, 2, 3, 4]));
  assert.equal(a.mean, 2.5);
  assert.equal(a.std, 1.118033988749895);
  closeAll(a.advantages, [-1.3415208, -0.4471736, 0.4471736, 1.3415208], 1e-6, 'A');
  // G = 8, typical SSIM-like rewards; numbers from numpy: (r - r.mean()) / (r.std() + 1e-4)
  const b = kept(groupAdvantages([0.91, 0.93, 0.90, 0.95, 0.92, 0.94, 0.96, 0.89]));
  assert.ok(Math.abs(b.mean - 0.925) < 1e-15);
  assert.ok(Math.abs(b.std - 0.022912878474779175) < 1e-15);
  closeAll(b.advantages, [-0.65180894, 0.21726965, -1.08634824, 1.08634824, -0.21726965, 0.65180894, 1.52088753, -1.52088753], 1e-6, 'A');
  assert.ok(b.advantages instanceof Float32Array);
});

test('advantages are clipped to +-advClip (5) with an outlier group', () => {
  // 31 rewards of 0 and one of 1: mean 1/32, std sqrt(31)/32; the outlier's z-score is sqrt(31) = 5.57 > 5.
  const rewards = [...new Array(31).fill(0), 1];
  const a = kept(groupAdvantages(rewards));
  const std = Math.sqrt(31) / 32;
  assert.ok(Math.abs(a.std - std) < 1e-15);
  assert.ok((31 / 32) / (std + 1e-4) > 5.5);
  assert.equal(a.advantages[31], 5);
  closeAll(a.advantages.slice(0, 31), new Array(31).fill(-(1 / 32) / (std + 1e-4)), 1e-6, 'others');
  const negative = kept(groupAdvantages(rewards.map((r) => -r)));
  assert.equal(negative.advantages[31], -5);
  const tight = kept(groupAdvantages([1, 2, 3, 4], { advClip: 1 }));
  closeAll(tight.advantages, [-1, -0.4471736, 0.4471736, 1], 1e-6, 'clip 1');
});

test('Dr. GRPO: only the mean is subtracted', () => {
  closeAll(kept(groupAdvantages([1, 2, 3, 4], { stdNormalize: false })).advantages, [-1.5, -0.5, 0.5, 1.5], 1e-7);
  // still clipped
  closeAll(kept(groupAdvantages([0, 0, 0, 40], { stdNormalize: false })).advantages, [-5, -5, -5, 5], 0);
});

test('zero-variance groups: dropped, or kept with exactly zero advantages', () => {
  const rewards = [0.1, 0.1, 0.1, 0.1];
  const dropped = groupAdvantages(rewards, { dropZeroVarianceGroups: true });
  assert.ok('dropped' in dropped);
  assert.equal(dropped.dropped, 'zero-variance');
  assert.match(dropped.reason, /all 4 rewards equal 0.1/);
  const k = kept(groupAdvantages(rewards));
  assert.deepEqual([...k.advantages], [0, 0, 0, 0]);
  assert.deepEqual([...kept(groupAdvantages(rewards, { stdNormalize: false })).advantages], [0, 0, 0, 0]);
  // A group with any spread is never dropped.
  assert.ok('advantages' in groupAdvantages([0.1, 0.1, 0.1, 0.1000001], { dropZeroVarianceGroups: true }));
});

test('input validation', () => {
  assert.throws(() => groupAdvantages([1]), /a group needs at least 2 actions/);
  assert.throws(() => groupAdvantages([1, Number.NaN]), /rewards\[1\] is NaN/);
  assert.throws(() => groupAdvantages([1, 2], { advClip: 0 }), /advClip must be > 0/);
  assert.throws(() => multiRewardGroupAdvantages([[1, 2], [1]], [1, 1], 'sum'), /terms\[1\] has 1 entries, expected 2/);
});

test('GDPO normalize-then-sum differs from sum on a crafted case', () => {
  // Term 0 (SSIM-like, small spread) and term 1 (a 0/1 reward, large spread), weights 1 and 0.2.
  const terms = [[0.9, 1], [0.8, 0], [0.85, 1], [0.95, 0]];
  const weights = [1, 0.2];
  // sum: r = [1.1, 0.8, 1.05, 0.95] -> numpy (r - mean) / (std + 1e-4)
  const sum = kept(multiRewardGroupAdvantages(terms, weights, 'sum'));
  closeAll(sum.advantages, [1.0901379, -1.52619306, 0.65408274, -0.21802758], 1e-6, 'sum');
  closeAll(sum.advantages, [...kept(groupAdvantages([1.1, 0.8, 1.05, 0.95])).advantages], 1e-7, 'sum = groupAdvantages');
  // GDPO: 1 * z(term0) + 0.2 * z(term1)
  const gdpo = kept(multiRewardGroupAdvantages(terms, weights, 'normalize-then-sum'));
  closeAll(gdpo.advantages, [0.64637503, -1.53920508, -0.24645502, 1.13928506], 1e-6, 'gdpo');
  // The best-SSIM action (3) is below average under 'sum' (the 0/1 term dominates) but best under GDPO.
  assert.ok(sum.advantages[3]! < 0 && gdpo.advantages[3]! === Math.max(...gdpo.advantages));
  // Both report the combined reward's statistics.
  assert.equal(gdpo.mean, sum.mean);
  // A constant term contributes nothing; all terms constant -> zero variance.
  closeAll(kept(multiRewardGroupAdvantages([[1, 5], [2, 5], [3, 5], [4, 5]], [1, 1], 'normalize-then-sum')).advantages,
    [-1.3415208, -0.4471736, 0.4471736, 1.3415208], 1e-6, 'constant term');
  assert.ok('dropped' in multiRewardGroupAdvantages([[1, 5], [1, 5]], [1, 1], 'normalize-then-sum', { dropZeroVarianceGroups: true }));
});

test('dense: hand-computed group of two', () => {
  // Equal SSIM (0.5 each) but opposite locations are good: the scalar SSIM advantage is 0, the dense one is not.
  const maps = [Float32Array.from([0.2, 0.8]), Float32Array.from([0.6, 0.4])];
  const other = [0.1, 0.3];
  const rewards = [0.6, 0.8]; // 1 * 0.5 + t
  const d = keptDense(denseAdvantages(maps, rewards, other, 1));
  closeAll([d.mean, d.std], [0.7, 0.1], 1e-12);
  const den = 0.1 + 1e-4;
  closeAll(d.maps[0]!, [-0.2 / den, 0.2 / den], 1e-6, 'D0');
  closeAll(d.maps[1]!, [0.2 / den, -0.2 / den], 1e-6, 'D1');
  closeAll(d.scalar, [-0.1 / den, 0.1 / den], 1e-6, 'T');
  closeAll(kept(groupAdvantages(rewards)).advantages, [-0.1 / den, 0.1 / den], 1e-6, 'scalar A');
  // advClip 0.5: each action's total mean_p D_i + T_i = -+0.999 is scaled to -+0.5, D_i with it (factor 0.5 den / 0.1):
  // D_0 = [-1, 1], not the windows clipped one by one to [-0.5, 0.5].
  const c = keptDense(denseAdvantages(maps, rewards, other, 1, { advClip: 0.5 }));
  closeAll(c.maps[0]!, [-1, 1], 1e-6, 'clipped D0');
  closeAll(c.maps[1]!, [1, -1], 1e-6, 'clipped D1');
  closeAll(c.scalar, [-0.5, 0.5], 1e-6, 'clipped T');
});

test('dense: windows that differ far more than the image means are not clipped one by one', () => {
  // As on photographs: each window's SSIM varies between actions by ~0.06 while the whole-image means differ by
  // ~0.003, so per window |D| is ~15 (the reward std is that of the means). Clipping each window at 5 (the old
  // code) cut most windows, and the per-action means no longer summed to 0 or matched the scalar advantages.
  const G = 8; const L = 3 * 12 * 12;
  const rand = rng(24);
  const maps = Array.from({ length: G }, () => Float32Array.from({ length: L }, () => 0.8 + 0.2 * (rand() - 0.5)));
  const other = Array.from({ length: G }, () => 0.2 * rand() * 1e-3);
  const rewards = maps.map((m, i) => m.reduce((s, x) => s + x, 0) / L + other[i]!);
  const d = keptDense(denseAdvantages(maps, rewards, other, 1));
  const A = kept(groupAdvantages(rewards)).advantages;
  let sum = 0;
  for (let i = 0; i < G; i++) {
    const meanD = d.maps[i]!.reduce((s, x) => s + x, 0) / L;
    assert.ok(Math.abs(meanD + d.scalar[i]! - A[i]!) < 1e-4, `action ${i}: mean D ${meanD} + T ${d.scalar[i]} vs scalar A ${A[i]}`);
    sum += meanD + d.scalar[i]!;
  }
  assert.ok(Math.abs(sum) < 1e-4, `the group's advantages sum to ${sum}`);
  const big = d.maps.reduce((n, m) => n + m.filter((x) => Math.abs(x) > 5).length, 0);
  assert.ok(big > 0.5 * G * L, `${big} of ${G * L} windows beyond +-5 (the case the old per-window clip cut)`);
});

function randomGroup(seed: number, G: number, L: number, w: number) {
  const rand = rng(seed);
  const maps = Array.from({ length: G }, () => Float32Array.from({ length: L }, () => 0.5 + 0.5 * rand()));
  const other = Array.from({ length: G }, () => 0.2 * Math.exp(-5 * (1 - rand())));
  const rewards = maps.map((m, i) => w * (m.reduce((s, x) => s + x, 0) / L) + other[i]!);
  return { maps, other, rewards };
}

test('dense: centred per location, and the mean over locations is the scalar SSIM advantage', () => {
  const G = 8; const L = 3 * 6 * 6; const w = 1;
  const { maps, other, rewards } = randomGroup(7, G, L, w);
  const d = keptDense(denseAdvantages(maps, rewards, other, w, { advClip: Infinity }));
  // Sum over the group is zero at every location.
  for (let l = 0; l < L; l++) {
    let s = 0;
    for (let i = 0; i < G; i++) s += d.maps[i]![l]!;
    assert.ok(Math.abs(s) < 1e-5, `location ${l}: sum ${s}`);
  }
  // mean_l D_i = w (ssim_i - mean ssim) / (std r + eps), and mean_l D_i + T_i = the scalar advantage A_i.
  const ssim = maps.map((m) => m.reduce((s, x) => s + x, 0) / L);
  const ms = meanStd(ssim).mean;
  const den = meanStd(rewards).std + 1e-4;
  const scalarA = kept(groupAdvantages(rewards, { advClip: Infinity })).advantages;
  for (let i = 0; i < G; i++) {
    const meanD = d.maps[i]!.reduce((s, x) => s + x, 0) / L;
    assert.ok(Math.abs(meanD - (w * (ssim[i]! - ms)) / den) < 1e-5, `action ${i}: mean D ${meanD}`);
    assert.ok(Math.abs(meanD + d.scalar[i]! - scalarA[i]!) < 1e-5, `action ${i}: ${meanD} + ${d.scalar[i]} vs ${scalarA[i]}`);
  }
});

test('dense: with the paper reward split by decomposeForDense', () => {
  const { ssimWeight, rest } = decomposeForDense('weights.ssim * ssim + weights.clip * exp(-alpha * (1 - clamp(clip_cos, 0, 1)))', { weights: { ssim: 0.7, clip: 0.2 }, alpha: 5 });
  const rand = rng(3);
  const G = 4; const L = 3 * 4 * 4;
  const maps = Array.from({ length: G }, () => Float32Array.from({ length: L }, () => rand()));
  const clipCos = maps.map(() => rand());
  const other = clipCos.map((c) => rest.evaluate({ clip_cos: c }));
  const rewards = maps.map((m, i) => ssimWeight * (m.reduce((s, x) => s + x, 0) / L) + other[i]!);
  const d = keptDense(denseAdvantages(maps, rewards, other, ssimWeight, { advClip: Infinity }));
  const scalarA = kept(groupAdvantages(rewards, { advClip: Infinity })).advantages;
  for (let i = 0; i < G; i++) {
    const meanD = d.maps[i]!.reduce((s, x) => s + x, 0) / L;
    assert.ok(Math.abs(meanD + d.scalar[i]! - scalarA[i]!) < 1e-5);
  }
});

test('dense: clipping, Dr. GRPO, zero variance, consistency check', () => {
  const G = 4; const L = 12;
  const { maps, other, rewards } = randomGroup(11, G, L, 1);
  // The clip acts on each action's total mean_p D_i + T_i (= the clipped scalar advantage), scaling D_i and T_i
  // together: the map keeps its shape.
  const clipped = keptDense(denseAdvantages(maps, rewards, other, 1, { advClip: 0.5 }));
  const free = keptDense(denseAdvantages(maps, rewards, other, 1, { advClip: Infinity }));
  const clippedA = kept(groupAdvantages(rewards, { advClip: 0.5 })).advantages;
  assert.ok(clippedA.some((a) => Math.abs(a) === 0.5), 'some scalar advantage hits the clip');
  for (let i = 0; i < G; i++) {
    const meanD = clipped.maps[i]!.reduce((s, x) => s + x, 0) / L;
    assert.ok(Math.abs(meanD + clipped.scalar[i]! - clippedA[i]!) < 1e-5, `action ${i}: ${meanD} + ${clipped.scalar[i]} vs ${clippedA[i]}`);
    const f = clipped.scalar[i]! / free.scalar[i]!;
    closeAll(clipped.maps[i]!, [...free.maps[i]!].map((x) => x * f), 1e-5, `action ${i}: the map scaled by ${f}`);
  }
  const dr = keptDense(denseAdvantages(maps, rewards, other, 1, { stdNormalize: false }));
  const meanT = meanStd(other).mean;
  closeAll(dr.scalar, other.map((t) => t - meanT), 1e-6, 'Dr. GRPO T');
  // zero variance: identical actions
  const same = [maps[0]!, maps[0]!, maps[0]!];
  const r0 = [rewards[0]!, rewards[0]!, rewards[0]!];
  const o0 = [other[0]!, other[0]!, other[0]!];
  assert.ok('dropped' in denseAdvantages(same, r0, o0, 1, { dropZeroVarianceGroups: true }));
  const zeros = keptDense(denseAdvantages(same, r0, o0, 1));
  assert.ok(zeros.maps.every((m) => m.every((x) => x === 0)) && zeros.scalar.every((x) => x === 0));
  // rewards that do not match the maps
  assert.throws(() => denseAdvantages(maps, rewards.map((r) => r + 0.1), other, 1), /action 0: reward .* != 1 \* mean\(SSIM map\)/);
  assert.throws(() => denseAdvantages(maps, rewards, other, 2), /tolerance/);
  // the tolerance bounds the map mean's error whatever the weight: maps 0.3 off under w = 1e-3 move the reward by
  // only 3e-4, yet are refused
  const w3 = 1e-3;
  const r3 = maps.map((m, i) => w3 * (m.reduce((s, x) => s + x, 0) / L) + other[i]!);
  keptDense(denseAdvantages(maps, r3, other, w3));
  assert.throws(() => denseAdvantages(maps.map((m) => m.map((x) => x - 0.3)), r3, other, w3), /action 0: .*tolerance 0\.001 on the map mean/);
  assert.throws(() => denseAdvantages([maps[0]!, maps[1]!.slice(1)], rewards.slice(0, 2), other.slice(0, 2), 1), /SSIM map 1 has 11 values, map 0 has 12/);
  assert.throws(() => denseAdvantages(maps, rewards.slice(1), other, 1), /4 SSIM maps, 3 rewards/);
});

test('spreadToPixels: transpose of the window, pixel mean = map mean', () => {
  const k = Float32Array.from([0.25, 0.5, 0.25]);
  // One window value of 1 on a 3x3 image: the outer product of the window, scaled by 9 / 1.
  closeAll(spreadToPixels(Float32Array.from([1]), 1, 1, 1, k), [0.5625, 1.125, 0.5625, 1.125, 2.25, 1.125, 0.5625, 1.125, 0.5625], 1e-7);
  const rand = rng(5);
  const C = 3; const h = 6; const w = 5;
  const D = Float32Array.from({ length: C * h * w }, () => rand() - 0.5);
  const g = Float32Array.from([1, 4, 6, 4, 1].map((x) => x / 16));
  const P = spreadToPixels(D, C, h, w, g);
  assert.equal(P.length, C * (h + 4) * (w + 4));
  const mean = (a: Float32Array) => a.reduce((s, x) => s + x, 0) / a.length;
  assert.ok(Math.abs(mean(P) - mean(D)) < 1e-6, `${mean(P)} vs ${mean(D)}`);
});

test('dense: every map value is exactly the float32 of w (S - mean S) / (std + eps) times the clip factor (a float64 reference)', () => {
  const G = 5; const L = 37; const w = 0.8; const clipAt = 0.3;
  const { maps, other, rewards } = randomGroup(29, G, L, w);
  const d = keptDense(denseAdvantages(maps, rewards, other, w, { advClip: clipAt }));
  // independent reference, written out in float64: the group statistics, each action's centred map, its clip factor
  const mean = rewards.reduce((s, r) => s + r, 0) / G;
  const denom = Math.sqrt(rewards.reduce((s, r) => s + (r - mean) ** 2, 0) / G) + 1e-4;
  const tMean = other.reduce((s, t) => s + t, 0) / G;
  let scaled = 0;
  for (let i = 0; i < G; i++) {
    const centred = Array.from({ length: L }, (_, l) => (w * (maps[i]![l]! - maps.reduce((s, m) => s + m[l]!, 0) / G)) / denom);
    const total = centred.reduce((s, x) => s + x, 0) / L + (other[i]! - tMean) / denom;
    const f = Math.abs(total) > clipAt ? clipAt / Math.abs(total) : 1;
    if (f < 1) scaled++;
    // the mean over the group is summed in a different order here: equal within a float32 ulp, not bit for bit
    closeAll(d.maps[i]!, centred.map((x) => Math.fround(x * f)), 2e-7, `action ${i}`);
    assert.ok(d.maps[i]!.some((x) => x !== 0), `action ${i}: the whole map written`);
    assert.notEqual(d.maps[i]![L - 1], 0, `action ${i}: its last value written`);
  }
  assert.ok(scaled > 0 && scaled < G, `${scaled} of ${G} actions clipped: both cases covered`);
});
