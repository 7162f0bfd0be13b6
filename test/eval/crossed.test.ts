// The runs x photographs interval (lib/eval/crossed.ts): a small case computed by hand from the mean squares, and
// copies of one run, which must not narrow the interval.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crossedMeanCI, pooledDifference } from '../../lib/eval/crossed.ts';
import type { PerSample } from '../../lib/eval/evaluate.ts';
import { meanCI } from '../../lib/eval/stats.ts';

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-9, `${what}: ${a} against ${b}`);

test('crossedMeanCI: 2 runs x 3 photographs by hand', () => {
  // Grand mean 31/6; run means 4 and 19/3; photograph means 2, 3.5, 10.
  // MS_run = 3 * ((4 - 31/6)^2 + (19/3 - 31/6)^2) / 1 = 49/6
  // MS_photo = 2 * ((2 - 31/6)^2 + (3.5 - 31/6)^2 + (10 - 31/6)^2) / 2 = 217/6
  // residuals y - run - photo + grand: +1/6, +2/3, -5/6 and their negatives; SSE 7/3, MS_resid = (7/3) / 2 = 7/6
  // Var = (49/6 + 217/6 - 7/6) / 6 = 259/36; df = (259/6)^2 / ((49/6)^2 / 1 + (217/6)^2 / 2 + (7/6)^2 / 2) = 2.58 -> 2
  const c = crossedMeanCI([[1, 3, 8], [3, 4, 12]]);
  close(c.mean, 31 / 6, 'mean');
  close(c.msRun, 49 / 6, 'MS_run');
  close(c.msPhoto, 217 / 6, 'MS_photo');
  close(c.msResid, 7 / 6, 'MS_resid');
  close(c.se, Math.sqrt(259 / 36), 'se');
  assert.equal(c.df, 2);
  close(c.half, 4.303 * Math.sqrt(259 / 36), 'half');
  close(c.lo, 31 / 6 - c.half, 'lo');
});

test('crossedMeanCI: a component estimated below 0 is floored at 0 (the run means agree better than chance)', () => {
  // Run means equal (MS_run 0 < MS_resid): Var = MS_photo / (R P), df = P - 1.
  const c = crossedMeanCI([[1, 2, 6], [2, 1, 6]]);
  assert.equal(c.msRun, 0);
  close(c.se, Math.sqrt(c.msPhoto / 6), 'se');
  assert.equal(c.df, 2);
  assert.ok(c.half > 0);
});

test('crossedMeanCI: three copies of one run give that run\'s interval over its photographs, not a narrower one', () => {
  const one = Array.from({ length: 64 }, (_, p) => 0.01 + 0.02 * Math.sin(1.7 * p) + 0.005 * Math.cos(5.3 * p));
  const single = meanCI(one);
  const c = crossedMeanCI([one, one, one]);
  close(c.mean, single.mean, 'mean');
  assert.ok(c.half >= single.half - 1e-12, `copies narrowed the interval: ${c.half} against one run's ${single.half}`);
  close(c.half, single.half, 'half');
});

test('crossedMeanCI: refuses too few runs or photographs, ragged rows and non-numbers', () => {
  assert.throws(() => crossedMeanCI([[1, 2, 3]]), /at least 2 runs/);
  assert.throws(() => crossedMeanCI([[1], [2]]), /2 photographs/);
  assert.throws(() => crossedMeanCI([[1, 2], [1, 2, 3]]), /run 1 has 3 photographs/);
  assert.throws(() => crossedMeanCI([[1, 2], [1, NaN]]), /run 1 photograph 1/);
});

test('pooledDifference: a row no run drew is null; two evaluations on other draws are refused, naming the run', () => {
  const ps = (ids: string[], reward: number[]): PerSample => ({ id: ids, type: ids.map(() => 't'), level: ids.map(() => 'x'), reward, ssim: reward, psnr: reward });
  const a = ps(['p', 'q', 'r'], [1, 2, 4]), b = ps(['p', 'q', 'r'], [0, 0, 0]);
  assert.equal(pooledDifference([{ a, b }], 'reward', { key: 'type', name: 'other' }), null);
  const one = pooledDifference([{ a, b }], 'reward')!;
  assert.equal(one.kind, 'one-run');
  close(one.ci.mean, 7 / 3, 'one run mean');
  const two = pooledDifference([{ a, b }, { a: ps(['p', 'q', 'r'], [3, 3, 8]), b }], 'reward')!;
  assert.equal(two.kind, 'crossed');
  close(two.ci.half, crossedMeanCI([[1, 2, 4], [3, 3, 8]]).half, 'crossed half');
  assert.throws(() => pooledDifference([{ a, b }, { a, b: ps(['q', 'p', 'r'], [0, 0, 0]) }], 'reward'), /run 1's two evaluations were not scored on the same draws/);
});
