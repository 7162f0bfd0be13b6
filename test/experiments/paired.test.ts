// lib/experiments/paired.ts: paired differences of a `sweep --methods` report, checked against values worked
// by hand (t_{0.975,2} = 4.303), on a report of bare arms (one family, which scripts/compare-paired.ts used to
// crash on) as well as with identity and warm-start sides; a missing side or a malformed pair names itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pairedDifferences, parseCompareSeeds, parsePairs, sidesOf, type PairedSeed } from '../../lib/experiments/paired.ts';

const v = (reward: number, ssim: number, psnr: number) => ({ reward, ssim, psnr });
const seed = (k: number, dense: number, sft: number): PairedSeed => ({
  seed: k,
  identity: v(0.9, 0.7, 20),
  start: { gaussian: v(0.91, 0.71, 21 + k) },
  runs: [{ method: 'dense', steps: 10, final: v(dense, 0.72, 22) }, { method: 'sft', steps: 20, final: v(sft, 0.7, 20 + k) }],
});
const SEEDS = [seed(0, 0.93, 0.92), seed(1, 0.95, 0.93), seed(2, 0.97, 0.94)];

test('paired differences: per seed a - b, the mean and the 95% t interval over seeds', () => {
  const [reward, ssim, psnr] = pairedDifferences(SEEDS, 'dense', 'sft');
  assert.equal(reward!.metric, 'reward');
  reward!.perSeed.forEach((x, i) => assert.ok(Math.abs(x - [0.01, 0.02, 0.03][i]!) < 1e-12, `seed ${i}: ${x}`));
  // mean 0.02, sd 0.01, half-width 4.303 * 0.01 / sqrt(3) = 0.0248434
  assert.ok(Math.abs(reward!.ci.mean - 0.02) < 1e-12);
  assert.ok(Math.abs(reward!.ci.half - 0.0248434) < 1e-6, `half ${reward!.ci.half}`);
  assert.ok(Math.abs(ssim!.ci.mean - 0.02) < 1e-12 && ssim!.ci.half < 1e-12);
  // psnr: 22 - (20 + k) = 2, 1, 0: mean 1, sd 1, half 2.48434
  assert.deepEqual(psnr!.perSeed, [2, 1, 0]);
  assert.ok(Math.abs(psnr!.ci.half - 2.48434) < 1e-4);
  // identity and a warm start as sides
  assert.deepEqual(pairedDifferences(SEEDS, 'start:gaussian', 'identity')[2]!.perSeed, [1, 2, 3]);
  assert.ok(Math.abs(pairedDifferences(SEEDS, 'dense', 'identity')[0]!.ci.mean - 0.05) < 1e-12);
});

test('pairs: A-B, or the first arm against each other; unknown sides and malformed pairs are named', () => {
  assert.deepEqual(parsePairs([], SEEDS), [['dense', 'sft']]);
  assert.deepEqual(parsePairs(['sft-dense', 'flow:dense-start:gaussian'], SEEDS), [['sft', 'dense'], ['flow:dense', 'start:gaussian']]);
  assert.throws(() => parsePairs(['dense'], SEEDS), /pair 'dense' is not A-B \(sides: dense, sft, identity, start:gaussian\)/);
  assert.deepEqual(sidesOf(SEEDS), ['dense', 'sft', 'identity', 'start:gaussian']);
  assert.throws(() => pairedDifferences(SEEDS, 'dense', 'backprop', 'r.json'), /r.json: seed 0 has no 'backprop' reward \(sides in this report: dense, sft, identity, start:gaussian\)/);
  assert.throws(() => pairedDifferences(SEEDS, 'start:flow', 'identity'), /no 'start:flow'/);
  assert.throws(() => parseCompareSeeds('{"seeds": []}', 'x.json'), /x.json: no "seeds" array/);
  assert.equal(parseCompareSeeds(JSON.stringify({ seeds: SEEDS }), 'x.json').length, 3);
});

test('paired differences with per-draw scores: the crossed seeds x photographs interval beside the t over seeds (by hand)', () => {
  // Two seeds, three photographs (one draw each); dense - sft cells 1, 3, 8 (seed 0) and 3, 4, 12 (seed 1), the
  // case test/eval/crossed.test.ts works by hand: mean 31/6, Var = (49/6 + 217/6 - 7/6) / 6 = 259/36, df 2.
  const ps = (reward: number[]) => ({ id: ['p', 'q', 'r'], type: ['t', 't', 't'], level: ['x', 'x', 'x'], reward, ssim: reward, psnr: reward });
  const withDraws = (k: number, cells: number[]): PairedSeed => ({
    seed: k,
    identity: { ...v(0, 0, 0), perSample: ps([0, 0, 0]) },
    start: { gaussian: v(0, 0, 0) },
    runs: [
      { method: 'dense', steps: 1, final: { ...v(cells.reduce((s, x) => s + x, 0) / 3, 0, 0), perSample: ps(cells) } },
      { method: 'sft', steps: 1, final: { ...v(0, 0, 0), perSample: ps([0, 0, 0]) } },
    ],
  });
  const seeds = [withDraws(0, [1, 3, 8]), withDraws(1, [3, 4, 12])];
  const [reward] = pairedDifferences(seeds, 'dense', 'sft');
  // The t over the 2 seeds' means 4 and 19/3: half 12.706 * (7/3 / sqrt 2) / sqrt 2 = 14.824.
  assert.ok(Math.abs(reward!.ci.half - (12.706 * 7) / 6) < 1e-9, `t half ${reward!.ci.half}`);
  const c = reward!.crossed!;
  assert.equal(c.kind, 'crossed');
  assert.equal(c.photographs, 3);
  assert.equal(c.df, 2);
  assert.ok(Math.abs(c.ci.mean - 31 / 6) < 1e-12);
  assert.ok(Math.abs(c.ci.half - 4.303 * Math.sqrt(259 / 36)) < 1e-9, `crossed half ${c.ci.half}`);
  // A side without per-draw scores (warm start here, or a report before round 7): no crossed interval.
  assert.equal(pairedDifferences(seeds, 'dense', 'start:gaussian')[0]!.crossed, null);
  assert.equal(pairedDifferences(SEEDS, 'dense', 'sft')[0]!.crossed, null);
});
