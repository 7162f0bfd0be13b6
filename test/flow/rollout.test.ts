// The rollout driver with the learner's graph: re-runs give the same trajectory, the learner recomputes the
// rollout's log-probabilities, the first on-policy ratios are 1 within 1e-6 whatever the batch split, and the
// ODE evaluation matches the standalone unrolled sampler.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildFlowGrpoGraph, buildFlowOdeSamplerGraph, buildFlowStepGraph } from '../../lib/flow/graphs.ts';
import { flowNoiseSeed, flowTrainingRows, fromFlowSpace, hyperFeeds, referenceMeans, rolloutFlow, startNoise, toFlowSpace, windowDraw } from '../../lib/flow/rollout.ts';
import { odePlan, rolloutPlan, type FlowSamplerSpec, type FlowSamplerType } from '../../lib/flow/sampler.ts';
import { metricsByStep } from '../../lib/flow/metrics.ts';
import { initVelocityParams } from '../../lib/flow/velocity.ts';
import { serialize } from '../../lib/graph/onnx.ts';
import { GraphSession, type Feeds } from '../../lib/graph/runtime.ts';
import { paramFeeds } from '../../lib/models/feeds.ts';
import { testRandom } from '../graph/gradcheck.ts';
import { perturbed, resnet, uniform } from './helpers.ts';

const R = { height: 12, width: 12 };
const PIX = 3 * R.height * R.width;
const N = 4;
const corrupted = uniform(N * PIX, testRandom(20), 0, 1);
// Two groups of two, as the orchestrator would send them.
const seeds = [0, 1, 2, 3].map((i) => flowNoiseSeed(7, `sample-${i >> 1}`, i & 1));

function samplerSpec(type: FlowSamplerType): FlowSamplerSpec {
  return { type, steps: 6, a: type === 'sde' ? 0.7 : 0.5, shift: 3, window: { size: 2, start: 'random' }, start: 'noise', startT: 1 };
}

/** Rows [lo, hi) of every per-row feed (those whose first dimension is n). */
function rowsSlice(feeds: Feeds, n: number, lo: number, hi: number): Feeds {
  const out: Feeds = {};
  for (const [k, f] of Object.entries(feeds)) {
    if (k.startsWith('param.') || f.dims.length === 0 || f.dims[0] !== n) {
      out[k] = f;
      continue;
    }
    const per = f.data.length / n;
    out[k] = { data: f.data.slice(lo * per, hi * per), dims: [hi - lo, ...f.dims.slice(1)] };
  }
  return out;
}

test('a re-run rollout gives the same trajectory; its trained steps are the window, chained', async () => {
  const step = await GraphSession.create(serialize(buildFlowStepGraph(resnet, R, 'sde')));
  const params = perturbed(resnet, 21);
  const plan = rolloutPlan(samplerSpec('sde'), windowDraw(7, 'sample-0'));
  const input = { corrupted, n: N, resolution: R, seeds };
  const a = await rolloutFlow(step, params, input, plan, { start: 'noise' });
  const b = await rolloutFlow(step, params, input, plan, { start: 'noise' });
  assert.deepEqual(a, b);
  assert.deepEqual(a.steps.map((s) => s.index), plan.filter((p) => p.trained).map((p) => p.index));
  assert.deepEqual(a.steps[1].xBefore, a.steps[0].xAfter);
  assert.ok(a.steps.every((s) => s.a === 0.7 && s.logp.length === N && s.logp.every(Number.isFinite)));
  assert.deepEqual(a.image, fromFlowSpace(a.final));
  const other = await rolloutFlow(step, params, { ...input, seeds: [...seeds].reverse() }, plan, { start: 'noise' });
  assert.notDeepEqual(other.final, a.final);
  await step.release();
});

for (const type of ['sde', 'cps'] as const) {
  for (const mode of ['scalar', 'dense'] as const) {
    test(`learner recomputes the rollout's logp; first on-policy ratios are 1 within 1e-6 in any batch split (${type}, ${mode})`, async () => {
      const step = await GraphSession.create(serialize(buildFlowStepGraph(resnet, R, type)));
      const grpo = await GraphSession.create(serialize(buildFlowGrpoGraph(resnet, R, type, mode)));
      const params = perturbed(resnet, 22);
      const plan = rolloutPlan(samplerSpec(type), windowDraw(7, 'sample-1'));
      const roll = await rolloutFlow(step, params, { corrupted, n: N, resolution: R, seeds }, plan, { start: 'noise', keepLogpMap: mode === 'dense' });
      const advantage = Float32Array.of(0.5, -0.5, 1, -1);
      const map = mode === 'dense' ? uniform(N * 3 * (R.height - 10) * (R.width - 10), testRandom(23), -0.1, 0.1) : undefined;
      const rows = flowTrainingRows(roll.steps, corrupted, N, R, advantage, map);
      assert.equal(rows.n, N * roll.steps.length);
      const refMean = await referenceMeans(step, params, rows);
      const feeds: Feeds = { ...paramFeeds(params), ...rows.feeds, ref_mean: refMean, ...hyperFeeds({ clipLow: 1e-4, clipHigh: 1e-4, beta: 0.04 }) };
      const whole = await grpo.run(feeds, ['logp', 'ratio', 'kl', 'clip_fraction']);
      const rolloutLogp = roll.steps.flatMap((s) => Array.from(s.logp));
      whole.logp.data.forEach((l, i) => assert.ok(Math.abs(l - rolloutLogp[i]) <= 1e-6 * Math.max(1, Math.abs(l)), `row ${i}: learner logp ${l}, rollout ${rolloutLogp[i]}`));
      assert.equal(whole.clip_fraction.data[0], 0, 'nothing clipped on the first pass');
      assert.ok(whole.kl.data[0] < 1e-10, `kl against itself ${whole.kl.data[0]}`);
      for (const [lo, hi] of [[0, 3], [3, rows.n], [5, 6]]) {
        const part = await grpo.run(rowsSlice(feeds, rows.n, lo, hi), ['ratio']);
        for (const r of [...whole.ratio.data, ...part.ratio.data]) assert.ok(Math.abs(r - 1) <= 1e-6, `ratio ${r} (rows ${lo}..${hi})`);
      }
      await step.release();
      await grpo.release();
    });
  }
}

test('ODE evaluation: deterministic, equal to the standalone unrolled sampler', async () => {
  const step = await GraphSession.create(serialize(buildFlowStepGraph(resnet, R, 'sde')));
  const params = perturbed(resnet, 24);
  const plan = odePlan(5, 3);
  const input = { corrupted, n: N, resolution: R, seeds };
  const a = await rolloutFlow(step, params, input, plan, { start: 'noise' });
  assert.equal(a.steps.length, 0);
  assert.deepEqual((await rolloutFlow(step, params, input, plan, { start: 'noise' })).final, a.final);
  const sampler = await GraphSession.create(serialize(buildFlowOdeSamplerGraph(resnet, R, params, plan)));
  const xStart = new Float32Array(N * PIX);
  seeds.forEach((s, i) => xStart.set(startNoise(s, PIX), i * PIX));
  const dims = [N, 3, R.height, R.width];
  const out = await sampler.run({ y: { data: toFlowSpace(corrupted), dims }, x_start: { data: xStart, dims } });
  out.x.data.forEach((v, j) => assert.ok(Math.abs(v - a.final[j]) <= 1e-5, `element ${j}: ${v} vs ${a.final[j]}`));
  await sampler.release();
  await step.release();
});

test("start = 'corrupted': a zero velocity leaves x at (1 - startT) y + startT eps", async () => {
  const step = await GraphSession.create(serialize(buildFlowStepGraph(resnet, R, 'sde')));
  const params = initVelocityParams(resnet, 25); // zero head: v = 0
  const plan = odePlan(3, 1, 0.5);
  const roll = await rolloutFlow(step, params, { corrupted, n: N, resolution: R, seeds }, plan, { start: 'corrupted' });
  seeds.forEach((s, i) => {
    const eps = startNoise(s, PIX);
    for (let j = 0; j < PIX; j++) {
      const y = 2 * corrupted[i * PIX + j] - 1;
      assert.ok(Math.abs(roll.final[i * PIX + j] - (0.5 * y + 0.5 * eps[j])) < 1e-6);
    }
  });
  await step.release();
});

test('bad input is refused with errors that name it', async () => {
  const step = await GraphSession.create(serialize(buildFlowStepGraph(resnet, R, 'sde')));
  const params = perturbed(resnet, 26);
  const plan = rolloutPlan(samplerSpec('sde'), 0);
  await assert.rejects(rolloutFlow(step, params, { corrupted, n: N, resolution: R, seeds: seeds.slice(1) }, plan, { start: 'noise' }), /3 noise seeds for 4 items/);
  await assert.rejects(rolloutFlow(step, params, { corrupted: corrupted.subarray(1), n: N, resolution: R, seeds }, plan, { start: 'noise' }), /corrupted has/);
  await assert.rejects(rolloutFlow(step, params, { corrupted, n: N, resolution: R, seeds }, [], { start: 'noise' }), /no steps/);
  const roll = await rolloutFlow(step, params, { corrupted, n: N, resolution: R, seeds }, plan, { start: 'noise' });
  const adv = new Float32Array(N);
  assert.throws(() => flowTrainingRows(roll.steps, corrupted, N, R, adv.subarray(1)), /3 advantages for 4 trajectories/);
  assert.throws(() => flowTrainingRows(roll.steps, corrupted, N, R, adv, new Float32Array(N * 3 * 2 * 2)), /kept no per-element log-density/);
  assert.throws(() => flowTrainingRows(roll.steps, corrupted, N, R, adv, new Float32Array(5)), /advantage map has 5 values/);
  assert.throws(() => initVelocityParams({ ...resnet, width: 0 }, 0), /width must be a positive integer/);
  await step.release();
});

test('per-step metrics: a behaviour log-prob off on one step only clips that step; the batch figures are their means', async () => {
  const step = await GraphSession.create(serialize(buildFlowStepGraph(resnet, R, 'sde')));
  const grpo = await GraphSession.create(serialize(buildFlowGrpoGraph(resnet, R, 'sde', 'scalar')));
  const params = perturbed(resnet, 27);
  const plan = rolloutPlan(samplerSpec('sde'), windowDraw(7, 'sample-0'));
  const roll = await rolloutFlow(step, params, { corrupted, n: N, resolution: R, seeds }, plan, { start: 'noise' });
  const rows = flowTrainingRows(roll.steps, corrupted, N, R, Float32Array.of(1, -1, 0.5, -0.5));
  const [first, second] = roll.steps.map((s) => s.index);
  // The second step's behaviour log-probs 0.01 higher: its ratios are exp(-0.01), outside a 1e-4 clip.
  const logpOld = rows.feeds.logp_old.data.map((v, i) => (rows.stepOfRow[i] === second ? v + 0.01 : v));
  const feeds: Feeds = { ...paramFeeds(params), ...rows.feeds, logp_old: { data: logpOld, dims: [rows.n] }, ref_mean: await referenceMeans(step, params, rows), ...hyperFeeds({ clipLow: 1e-4, clipHigh: 1e-4, beta: 0 }) };
  const out = await grpo.run(feeds, ['ratio', 'clip_fraction', 'clip_fraction_rows', 'kl', 'kl_rows']);
  const m = metricsByStep(rows.stepOfRow, { ratio: out.ratio.data, clipFractionRows: out.clip_fraction_rows.data, klRows: out.kl_rows.data });
  assert.deepEqual(m.map((x) => [x.step, x.rows, x.clipFraction]), [[first, N, 0], [second, N, 1]]);
  assert.ok(Math.abs(m[0].ratio - 1) < 1e-6 && Math.abs(m[1].ratio - Math.exp(-0.01)) < 1e-5, `ratios ${m[0].ratio}, ${m[1].ratio}`);
  assert.equal(out.clip_fraction.data[0], 0.5);
  assert.ok(Math.abs((m[0].kl + m[1].kl) / 2 - out.kl.data[0]) < 1e-9);
  assert.throws(() => metricsByStep(rows.stepOfRow, { ratio: out.ratio.data.subarray(1), clipFractionRows: out.clip_fraction_rows.data, klRows: out.kl_rows.data }), /ratio has 7 values for 8 rows/);
  await step.release();
  await grpo.release();
});
