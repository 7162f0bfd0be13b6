// The runs x photographs interval (lib/eval/crossed.ts): a small case computed by hand from the mean squares, and
// copies of one run, which must not narrow the interval; pooledDifference on a small case and on round 24's kept
// demo scores against an independent computation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
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

test('pooledDifference on round 24\'s kept demo scores: the figures an independent computation (numpy/scipy) gives', () => {
  // docs/results/demo-r24: three seeds' summaries with every draw's scores. Python (review25b's formula, scipy's t):
  // GRPO - SFT +0.004395 [-0.004718, +0.013508] df 2, GRPO - identity +0.022553 [+0.018644, +0.026462] df 9. The
  // tolerance covers the t table's 4.303 against scipy's 4.30265 (and the 9-df quantile's rounding).
  const runs = [0, 1, 2].map((s) => JSON.parse(gunzipSync(readFileSync(`docs/results/demo-r24/demo-r24-s${s}-summary.json.gz`)).toString('utf8')) as Record<'identity' | 'before' | 'after', { perSample: PerSample }>);
  const check = (a: 'after' | 'before', b: 'before' | 'identity', want: [number, number, number, number]) => {
    const p = pooledDifference(runs.map((r) => ({ a: r[a].perSample, b: r[b].perSample })), 'reward')!;
    assert.equal(p.kind, 'crossed');
    assert.equal(p.photographs, 64);
    assert.equal(p.df, want[3]);
    assert.ok(Math.abs(p.ci.mean - want[0]) < 1e-6, `${a} - ${b} mean ${p.ci.mean}`);
    assert.ok(Math.abs(p.ci.lo - want[1]) < 2e-5, `${a} - ${b} lo ${p.ci.lo}`);
    assert.ok(Math.abs(p.ci.hi - want[2]) < 2e-5, `${a} - ${b} hi ${p.ci.hi}`);
  };
  check('after', 'before', [0.004395, -0.004718, 0.013508, 2]);
  check('after', 'identity', [0.022553, 0.018644, 0.026462, 9]);
});
