// The sampler reference in plain TypeScript: hand-computed steps, a = 0 as the Euler step, the t = 1 step,
// the empirical noise scale, timesteps and the SDE window's placement.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cpsCoefficients,
  gaussianLogpMean,
  odeCoefficients,
  odePlan,
  rolloutPlan,
  sdeCoefficients,
  stepMean,
  stepSample,
  timesteps,
  windowStart,
  type FlowSamplerSpec,
} from '../../lib/flow/sampler.ts';
import { stepNoise } from '../../lib/flow/rollout.ts';
import { testRandom } from '../graph/gradcheck.ts';

const close = (a: number, b: number, tol: number, what: string): void => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test('sde step: hand-computed coefficients at t = 0.5, t_next = 0.4, a = 0.7', () => {
  // s = 0.7 sqrt(0.5 / 0.5) = 0.7; dt = -0.1; cx = 1 + 0.49 / 1 * -0.1; cv = (1 + 0.49 * 0.5 / 1) * -0.1
  const c = sdeCoefficients(0.5, 0.4, 0.7);
  close(c.cx, 0.951, 1e-12, 'cx');
  close(c.cv, -0.1245, 1e-12, 'cv');
  close(c.std, 0.7 * Math.sqrt(0.1), 1e-12, 'std');
});

test('sde step with a = 0 is the Euler step exactly', () => {
  const rand = testRandom(3);
  const x = Float64Array.from({ length: 64 }, () => rand() * 2 - 1);
  const v = Float64Array.from({ length: 64 }, () => rand() * 2 - 1);
  for (const [t, tn] of [[1, 0.9], [0.63, 0.41], [0.1, 0]]) {
    const sde = sdeCoefficients(t, tn, 0);
    assert.deepEqual(sde, odeCoefficients(t, tn));
    const euler = x.map((xi, i) => xi + v[i] * (tn - t));
    assert.deepEqual(stepSample(stepMean(x, v, sde), sde.std, v), euler);
  }
});

test('cps step: coefficients reproduce the written formula, and a = 0 is Euler', () => {
  const [t, tn, a] = [0.7, 0.55, 0.5];
  const c = cpsCoefficients(t, tn, a);
  close(c.std, tn * Math.sin(Math.PI / 4), 1e-15, 'std');
  for (const [x, v] of [[0.3, -1.2], [-0.8, 0.4]]) {
    const formula = (1 - tn) * (x - t * v) + Math.sqrt(tn * tn - c.std * c.std) * (x + (1 - t) * v);
    close(x * c.cx + v * c.cv, formula, 1e-12, 'mean');
  }
  const c0 = cpsCoefficients(t, tn, 0);
  close(c0.cx, 1, 1e-15, 'cx at a = 0');
  close(c0.cv, tn - t, 1e-15, 'cv at a = 0');
  assert.equal(c0.std, 0);
});

test('the t = 1 step is finite: the next timestep stands in for t in 1 / (1 - t)', () => {
  const c = sdeCoefficients(1, 0.9, 1.3);
  for (const v of Object.values(c)) assert.ok(Number.isFinite(v), `coefficients ${JSON.stringify(c)}`);
  close(c.std, 1.3 * Math.sqrt(1 / 0.1) * Math.sqrt(0.1), 1e-12, 'std at t = 1');
});

test('x_next - mean has empirical std s_t sqrt(-dt) within 2% (per-step noise streams)', () => {
  const pix = 3 * 32 * 32;
  for (const [t, tn] of [[1, 0.9], [0.5, 0.4]]) {
    const c = sdeCoefficients(t, tn, 0.7);
    const mean = new Float64Array(pix);
    let s2 = 0;
    let count = 0;
    for (let item = 0; item < 8; item++) {
      const xNext = stepSample(mean, c.std, stepNoise(item, 3, pix));
      for (const d of xNext) {
        s2 += d * d;
        count++;
      }
    }
    const std = Math.sqrt(s2 / count);
    assert.ok(Math.abs(std / c.std - 1) < 0.02, `t ${t}: empirical ${std}, expected ${c.std}`);
  }
});

test('gaussianLogpMean is the averaged N(mean, std^2) log-density', () => {
  const xs = [0.1, -0.3];
  const ms = [0, 0.2];
  const std = 0.5;
  const expected = xs.reduce((s, x, i) => s - ((x - ms[i]) ** 2) / (2 * std * std) - Math.log(std) - 0.5 * Math.log(2 * Math.PI), 0) / 2;
  close(gaussianLogpMean(xs, ms, std), expected, 1e-12, 'logp');
  assert.throws(() => gaussianLogpMean(xs, ms, 0), /std > 0/);
});

test('timesteps: from 1 to 0, decreasing, uniform at shift 1, more high-noise steps at shift 3, float32 values', () => {
  const u = timesteps(4, 1);
  assert.deepEqual(u, [1, 0.75, 0.5, 0.25, 0]);
  const s = timesteps(10, 3);
  assert.equal(s[0], 1);
  assert.equal(s[10], 0);
  for (let k = 0; k < 10; k++) assert.ok(s[k + 1] < s[k]);
  assert.ok(s[5] > 0.5, `shifted midpoint ${s[5]}`);
  for (const v of s) assert.equal(v, Math.fround(v));
  assert.equal(timesteps(4, 1, 0.5)[0], 0.5);
  assert.throws(() => timesteps(0, 1), /flow.steps/);
  assert.throws(() => timesteps(4, 0), /flow.shift/);
});

const spec: FlowSamplerSpec = { type: 'sde', steps: 10, a: 0.7, shift: 3, window: { size: 2, start: 'random' }, start: 'noise', startT: 1 };

test('SDE window: random placement stays in the high-noise half, SDE inside, ODE outside, last step never trained', () => {
  const starts = new Set<number>();
  for (let i = 0; i < 50; i++) {
    const draw = i / 50;
    const plan = rolloutPlan(spec, draw);
    const trained = plan.filter((p) => p.trained).map((p) => p.index);
    assert.equal(trained.length, 2);
    assert.equal(trained[1], trained[0] + 1);
    assert.ok(trained[1] < 5, `window ${trained} in the first half of 10 steps`);
    starts.add(trained[0]);
    for (const p of plan) assert.equal(p.a, p.trained ? 0.7 : 0);
    assert.equal(plan[9].trained, false);
  }
  assert.deepEqual([...starts].sort(), [0, 1, 2, 3], 'every start that fits is drawn');
  // Flow-GRPO's trained steps: every step but the last; with lastStepSde its sampler too (the last step SDE, untrained).
  const all = rolloutPlan({ ...spec, window: { size: 9, start: 0 } }, 0);
  assert.equal(all.filter((p) => p.trained).length, 9);
  assert.equal(all[9].a, 0, 'by default the last step is an ODE step');
  const faithful = rolloutPlan({ ...spec, window: { size: 9, start: 0 }, lastStepSde: true }, 0);
  assert.deepEqual(faithful.map((p) => [p.a, p.trained]), [...Array(9).fill([0.7, true]), [0.7, false]]);
  const windowed = rolloutPlan({ ...spec, lastStepSde: true }, 0);
  assert.deepEqual(windowed.map((p) => p.a), [0.7, 0.7, 0, 0, 0, 0, 0, 0, 0, 0.7], 'the window and the last step are SDE steps, the rest ODE');
  assert.throws(() => windowStart(10, { size: 10, start: 0 }, 0), /never trained/);
  assert.throws(() => windowStart(10, { size: 6, start: 'random' }, 0), /first half/);
  assert.throws(() => rolloutPlan({ ...spec, type: 'cps', a: 1.3 }, 0), /cps/);
  assert.throws(() => rolloutPlan({ ...spec, a: 0 }, 0), /flow.sde.a/);
});

test('flow.sde.trainLastStep: a numeric window may reach the last step, which is then SDE and trained (sde only)', () => {
  const w = { size: 2, start: 8 };
  assert.throws(() => rolloutPlan({ ...spec, window: w }, 0), /never trained/, 'refused without the option');
  const plan = rolloutPlan({ ...spec, window: w, trainLastStep: true }, 0);
  assert.deepEqual(plan.map((p) => [p.a, p.trained]), [...Array(8).fill([0, false]), [0.7, true], [0.7, true]]);
  assert.equal(plan[9].tNext, 0, 'the trained last step ends at t = 0');
  assert.ok(sdeCoefficients(plan[9].t, plan[9].tNext, plan[9].a).std > 0, 'with a density');
  assert.throws(() => windowStart(10, { size: 3, start: 8 }, 0, true), /past the last step/);
  // a window that does not end at the last step would leave it untrained under the option's name: refused (review34)
  assert.throws(() => rolloutPlan({ ...spec, trainLastStep: true }, 0.99), /needs a numeric window ending at the last step/);
  assert.throws(() => windowStart(10, { size: 2, start: 7 }, 0, true), /needs the window to end at the last step \(9\); steps 7\.\.8 leave it untrained/);
  assert.throws(() => rolloutPlan({ ...spec, type: 'cps', a: 0.5, window: w, trainLastStep: true }, 0), /cps/);
});

test('the ODE plan: every step deterministic, the chain of timesteps unbroken', () => {
  const plan = odePlan(6, 2);
  assert.equal(plan.length, 6);
  for (let k = 0; k < 5; k++) assert.equal(plan[k].tNext, plan[k + 1].t);
  assert.ok(plan.every((p) => p.a === 0 && !p.trained));
});
