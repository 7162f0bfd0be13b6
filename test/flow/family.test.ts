// The flow family as a policy of the pipeline: the configuration selects it and refuses bad settings at
// load, the bundle hands out its graphs, the learner's rows recompute the rollout worker's log-probabilities
// (first on-policy ratios within 1e-6 of 1) and the single-process specification trains it end to end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../lib/config/index.ts';
import { grpoHyper } from '../../lib/grpo/algorithm.ts';
import { FlowRunner, FlowTrainer, flowSamplerName, type FlowGroupRollout } from '../../lib/flow/family.ts';
import { GraphSession } from '../../lib/graph/runtime.ts';
import { initialParamsOf, paramShapesOf, standalonePolicyModel } from '../../lib/models/bundle.ts';
import { velocityParams } from '../../lib/flow/velocity.ts';
import { runSingleProcess } from '../../lib/local/single-process.ts';
import { toFlowSpace, startNoise } from '../../lib/flow/rollout.ts';
import { rolloutNoiseSeed } from '../../lib/grpo/sampling.ts';
import { sameVersionScreen } from '../../lib/grpo/logp-check.ts';
import { firstFlowPass, tinyFlowConfig } from '../helpers/flow-group.ts';

const tiny = tinyFlowConfig;

test('config: model.family flow mounts the flow section; a bad window is refused at load naming the field', () => {
  const c = tiny();
  assert.equal(c.model.family, 'flow');
  assert.equal(parseConfig({}).model.family, 'gaussian');
  assert.throws(() => parseConfig({ model: { family: 'flow' }, flow: { steps: 4, sde: { window: { size: 3, start: 1 } } } }), /flow\.sde\.window|sde.*window/);
  assert.throws(() => parseConfig({ model: { family: 'flower' } }), /family/);
  assert.match(flowSamplerName(c), /^flow \(ODE, 3 steps; trained with sde a=0\.7, 4 steps, window 1 at random/);
  assert.deepEqual([...paramShapesOf(c).keys()], velocityParams({ arch: 'resnet', width: 4, depth: 1, timeFrequencies: 2, timeWidth: 4 }).map((p) => p.name));
});

// The residual space: the flow's states (and log-densities) are the scaled residual of the corrupted image.
const RESIDUAL_SPACE = { space: 'residual', scale: 0.1, predict: 'residual' };
const withFlow = (flow: Record<string, unknown>) => ({ flow: { ...(tiny().flow as unknown as Record<string, unknown>), ...flow } });
// The cps sampler (its a = 0 step is the Euler step only up to rounding, so the export's Euler loop is a real check).
const CPS = { sde: { type: 'cps', a: 0.5, window: { size: 1, start: 'random' } } };
// The last step trained (flow.sde.trainLastStep, round 34): an SDE step that ends at t = 0, through the whole pipeline.
const LAST = { sde: { window: { size: 1, start: 3 }, trainLastStep: true } };

for (const [mode, space, type] of [['scalar', 'image', 'sde'], ['dense', 'image', 'sde'], ['scalar', 'residual', 'sde'], ['scalar', 'image', 'cps'], ['scalar', 'image', 'sde, last step trained'], ['scalar', 'residual', 'sde, last step trained']] as const) {
  test(`learner rows recompute the rollout's log-probs: first on-policy ratios within 1e-6 of 1 (${mode}, ${space} space, ${type})`, async () => {
    const last = type === 'sde, last step trained';
    const c = tiny(withFlow({ ...(space === 'residual' ? RESIDUAL_SPACE : {}), ...(type === 'cps' ? CPS : {}), ...(last ? LAST : {}) }), mode);
    assert.equal(c.flow.sde.type, type === 'cps' ? 'cps' : 'sde');
    assert.equal(c.flow.sde.trainLastStep, last);
    const G = c.grpo.groupSize;
    const { batch, out } = await firstFlowPass(c, async ({ runner, params, id, image, roll }) => {
      // a re-run gives the same trajectory bit for bit
      const seeds = Array.from({ length: G }, (_, a) => rolloutNoiseSeed(c.run.seed, id, a));
      const again = await runner.rollout(params, id, image, seeds, mode === 'dense');
      assert.deepEqual(again.images, roll.images);
      assert.equal(roll.steps[0]!.length, 1, 'one trained step (the window)');
      if (last) assert.equal(roll.steps[0]![0]!.index, c.flow.steps - 1, 'the trained step is the last one');
    });
    assert.equal(batch.flow!.rows, 2 * G);
    for (const r of out.ratio.data) assert.ok(Math.abs(r - 1) <= 1e-6, `ratio ${r}`);
    assert.equal(out.clip_fraction.data[0], 0);
    assert.ok(Math.abs(out.kl.data[0]!) < 1e-12, 'the reference is the policy itself');
    if (mode === 'scalar') out.logp.data.forEach((lp, k) => assert.ok(Math.abs(lp - batch.flow!.logpOld[k]!) < 1e-6, `row ${k}: learner ${lp}, rollout ${batch.flow!.logpOld[k]}`));
  });
}

test('flow.sde.lastStepSde: the last step samples with the SDE (a different final image), the trained steps are the same records', async () => {
  const H = 12;
  const pix = 3 * H * H;
  const image = Float32Array.from({ length: pix }, (_, i) => (i % 5) / 5);
  const seeds = [rolloutNoiseSeed(0, 'x', 0), rolloutNoiseSeed(0, 'x', 1)];
  const rolls = [];
  for (const lastStepSde of [false, true]) {
    const c = tiny(withFlow({ sde: { window: { size: 1, start: 1 }, lastStepSde } }));
    assert.match(flowSamplerName(c), lastStepSde ? /window 1 at 1, last step SDE;/ : /window 1 at 1;/);
    const runner = await FlowRunner.create(c);
    const params = initialParamsOf(c);
    for (const t of params.values()) for (let i = 0; i < t.data.length; i++) t.data[i]! += 0.01 * Math.sin(i + t.data.length);
    rolls.push(await runner.rollout(params, 'x', image, seeds, false));
    await runner.release();
  }
  const [ode, sde] = rolls as [FlowGroupRollout, FlowGroupRollout];
  assert.deepEqual(sde.steps, ode.steps, 'the trained step (index 1) is untouched');
  assert.equal(sde.steps[0]![0]!.index, 1);
  // The last step adds std * eps with std = s_t sqrt(t) at t_next = 0: the final images differ.
  let diff = 0;
  sde.images.forEach((v, i) => { diff = Math.max(diff, Math.abs(v - ode.images[i]!)); });
  assert.ok(diff > 1e-3, `final images differ by the last step's noise (max |diff| ${diff})`);
});

test('the single-process specification trains the flow family: SFT, Flow-GRPO over the trained steps, a checkpoint of velocity parameters', async () => {
  const c = tiny();
  const steps: Array<{ clipFraction: number; kl: number }> = [];
  const r = await runSingleProcess(c, { onStep: (s) => steps.push(s) });
  assert.equal(r.sftSteps, 2);
  assert.equal(r.grpoSteps, 2);
  assert.equal(r.checkpoint.meta.version, 4);
  assert.deepEqual([...r.params.keys()].sort(), [...paramShapesOf(c).keys()].sort());
  assert.equal(steps[0]!.clipFraction, 0, 'on-policy: nothing clipped');
  assert.ok(steps[0]!.kl < 1e-12, 'the first update starts at the reference');
  assert.ok(r.rewards.every(Number.isFinite));
  // deterministic: the same run again gives the same checkpoint
  const again = await runSingleProcess(c);
  for (const [k, t] of r.params) assert.deepEqual(again.params.get(k)!.data, t.data, k);
});

for (const [space, start, type] of [['image', 'noise', 'sde'], ['residual', 'noise', 'sde'], ['residual', 'corrupted', 'sde'], ['image', 'noise', 'cps'], ['image', 'corrupted', 'cps']] as const) test(`the standalone export is the ODE sampler in image space, equal to FlowRunner.evaluate (${space} space, start ${start}, ${type})`, async () => {
  const c = tiny(withFlow({ ...(space === 'residual' ? RESIDUAL_SPACE : {}), start, ...(type === 'cps' ? CPS : {}) }));
  assert.equal(c.flow.sde.type, type);
  if (space === 'residual') assert.match(flowSamplerName(c), /runs on the residual scaled by 1\/0\.1/);
  const H = c.data.size;
  const pix = 3 * H * H;
  const params = initialParamsOf(c);
  for (const t of params.values()) for (let i = 0; i < t.data.length; i++) t.data[i]! += 0.01 * Math.sin(i + t.data.length);
  const image = Float32Array.from({ length: 2 * pix }, (_, i) => (i % 11) / 11);
  const runner = await FlowRunner.create(c);
  const ids = ['a', 'b'];
  const evaluated = await runner.evaluate(params, image, ids);
  const again = await runner.evaluate(params, image, ids);
  assert.deepEqual(again, evaluated, 'deterministic');
  const { flowNoiseSeed } = await import('../../lib/flow/rollout.ts');
  const noise = new Float32Array(2 * pix);
  ids.forEach((id, i) => noise.set(startNoise(flowNoiseSeed(c.run.seed, `eval:${id}`, 0), pix), i * pix));
  const session = await GraphSession.create(standalonePolicyModel(c, params));
  const out = await session.run({ image: { data: image, dims: [2, 3, H, H] }, noise: { data: noise, dims: [2, 3, H, H] } });
  let worst = 0;
  out.restored.data.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - evaluated[i]!)); });
  assert.ok(worst < 1e-5, `standalone vs evaluate: max |diff| ${worst}`);
  assert.ok(toFlowSpace(image).length === image.length);
  await session.release();
  await runner.release();
});

test('residual space SFT: the target is (clean - corrupted) / scale (a fresh network, x0_hat = 0, has loss mean(target^2))', async () => {
  const c = tiny(withFlow(RESIDUAL_SPACE));
  const H = c.data.size;
  const n = 2;
  const images = Float32Array.from({ length: n * 3 * H * H }, (_, i) => (i % 13) / 13);
  const targets = images.map((v, i) => Math.min(1, Math.max(0, v + 0.05 * Math.sin(i))));
  const trainer = FlowTrainer.create(c, initialParamsOf(c));
  const { loss } = await trainer.sftStep(images, targets, n, 0);
  let expected = 0;
  targets.forEach((v, i) => (expected += ((v - images[i]!) / 0.1) ** 2));
  expected /= targets.length;
  assert.ok(Math.abs(loss / expected - 1) < 1e-4, `loss ${loss} vs ${expected}`);
  await trainer.release();
});

test('sft.ema: the trained weights are untouched, the average follows them by hand, finishSft publishes it; off (default) changes nothing', async () => {
  const off = tiny();
  const on = tiny({ sft: { steps: 2, batchSize: 2, ema: 0.15 } });
  assert.equal(off.sft.ema, 0);
  const H = off.data.size;
  const n = 2;
  const a = FlowTrainer.create(off, initialParamsOf(off));
  const b = FlowTrainer.create(on, initialParamsOf(on));
  assert.equal(a.sftEma, undefined);
  const ref = new Map([...b.params].map(([k, t]) => [k, Array.from(t.data)]));
  for (let s = 0; s < 3; s++) {
    const images = Float32Array.from({ length: n * 3 * H * H }, (_, i) => ((i * (s + 3)) % 17) / 17);
    const targets = images.map((v, i) => Math.min(1, Math.max(0, v + 0.1 * Math.sin(i + s))));
    await a.sftStep(images, targets, n, 1e-2);
    await b.sftStep(images, targets, n, 1e-2);
    const d = [0.1, 0.15, 0.15][s]!; // min(0.15, k/(k+9)): 1/10, then the cap
    for (const [k, t] of a.params) {
      assert.deepEqual(b.params.get(k)!.data, t.data, `${k}: the average does not touch the trained weights`);
      const r = ref.get(k)!;
      for (let i = 0; i < r.length; i++) r[i] = d * r[i]! + (1 - d) * t.data[i]!;
    }
  }
  let worst = 0;
  let moved = 0;
  for (const [k, r] of ref) {
    const sh = b.sftEma!.shadow.get(k)!.data;
    r.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - sh[i]!)); moved = Math.max(moved, Math.abs(sh[i]! - b.params.get(k)!.data[i]!)); });
  }
  assert.ok(worst < 1e-6, `average vs by hand: max |diff| ${worst}`);
  assert.ok(moved > 1e-4, 'the average differs from the trained weights');
  const before = new Map([...a.params].map(([k, t]) => [k, new Float32Array(t.data)]));
  a.finishSft();
  for (const [k, t] of a.params) assert.deepEqual(t.data, before.get(k), `${k}: off, finishSft changes nothing`);
  b.finishSft();
  for (const [k, t] of b.params) assert.deepEqual(t.data, b.sftEma!.shadow.get(k)!.data, k);
  await a.release();
  await b.release();
  // single-process publishes the average as the warm start; the Gaussian family refuses the key
  const ra = await runSingleProcess(tiny({ grpo: { groupSize: 3, samplesPerBatch: 2, steps: 0 } }));
  const rb = await runSingleProcess(tiny({ grpo: { groupSize: 3, samplesPerBatch: 2, steps: 0 }, sft: { steps: 2, batchSize: 2, ema: 0.5 } }));
  assert.ok([...ra.params].some(([k, t]) => t.data.some((v, i) => v !== rb.params.get(k)!.data[i])), 'the published weights are the average');
  for (const [k, t] of rb.checkpoint.params) assert.deepEqual(t.data, rb.sftParams.get(k)!.data, k);
  await assert.rejects(runSingleProcess(parseConfig({ data: { size: 12, source: { kind: 'procedural', count: 16 } }, sft: { steps: 1, batchSize: 2, ema: 0.5 }, grpo: { steps: 0 } })), /sft\.ema=0\.5: the SFT weight average is implemented for model\.family=flow only/);
});

// As for the policy (test/models/trainer.test.ts): a NaN activation inside the flow network makes the loss NaN, and such a
// step must never be applied (what lets a gradient rule differ only where an activation is NaN: docs/performance-history/grpo-step.md,
// "Round 22: grpo22").
test('a NaN activation (from x_t or a parameter) makes the Flow-GRPO loss NaN and the step is never applied', async () => {
  for (const mode of ['scalar', 'dense'] as const) {
    const c = tiny({}, mode);
    const params = initialParamsOf(c);
    const trainer = FlowTrainer.create(c, params);
    const pix = 3 * 12 * 12;
    const R = 2;
    const noise = (seed: number, n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 1000 + i * 12.9898) * 0.5);
    const x = noise(1, R * pix);
    const flow = {
      rows: R, actionIndex: Int32Array.of(0, 1), stepIndex: Int32Array.of(0, 0),
      t: Float32Array.of(0.8, 0.6), tNext: Float32Array.of(0.55, 0.35), a: Float32Array.of(0.7, 0.7),
      x, xNext: x.map((v, i) => 0.9 * v + 0.05 * Math.cos(i)), logpOld: new Float32Array(mode === 'dense' ? R * pix : R).fill(-1),
    };
    const m = 12 - 10;
    const inputs = {
      n: 2, images: noise(2, 2 * pix).map((v) => 0.5 + v * 0.5), advantages: Float32Array.of(1, -1), flow, refMean: noise(3, R * pix),
      advantageMap: mode === 'dense' ? noise(4, 2 * 3 * m * m) : undefined,
    };
    const hyper = grpoHyper(c);
    assert.ok((await trainer.grpoStep(inputs, hyper)).step.applied, `${mode}: the finite batch is applied`);
    const cases: Array<[string, () => () => void]> = [
      ['a NaN in x_t', () => { const v = x[100]!; x[100] = NaN; return () => { x[100] = v; }; }],
      ['a NaN hidden bias', () => { const b = params.get('block0.conv1.bias')!.data; const v = b[1]!; b[1] = NaN; return () => { b[1] = v; }; }],
    ];
    for (const [what, inject] of cases) {
      const undo = inject();
      const before = new Map([...params].map(([k, v]) => [k, Float32Array.from(v.data)]));
      const steps = trainer.optimizer.stepCount;
      const r = await trainer.grpoStep(inputs, hyper);
      assert.ok(Number.isNaN(r.loss), `${mode}, ${what}: loss ${r.loss}`);
      assert.equal(r.step.applied, false, `${mode}, ${what}`);
      for (const [k, v] of params) assert.deepEqual(v.data, before.get(k), `${mode}, ${what}: ${k} untouched`);
      assert.equal(trainer.optimizer.stepCount, steps);
      undo();
    }
    await trainer.release();
  }
});

test('the same-version check over flow rows: a forged step excludes its action (every row of it), as if its advantage were 0', async () => {
  const c = tiny({}, 'scalar');
  const pix = 3 * 12 * 12;
  const R = 3;
  const noise = (seed: number, n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 1000 + i * 12.9898) * 0.5);
  const x = noise(1, R * pix);
  const flow = {
    rows: R, actionIndex: Int32Array.of(0, 1, 1), stepIndex: Int32Array.of(0, 0, 1),
    t: Float32Array.of(0.8, 0.8, 0.6), tNext: Float32Array.of(0.55, 0.55, 0.35), a: Float32Array.of(0.7, 0.7, 0.7),
    x, xNext: x.map((v, i) => 0.9 * v + 0.05 * Math.cos(i)), logpOld: new Float32Array(R),
  };
  const base = { n: 2, images: noise(2, 2 * pix).map((v) => 0.5 + v * 0.5), advantages: Float32Array.of(1, -1), refMean: noise(3, R * pix) };
  const hyper = grpoHyper(c);
  const probe = FlowTrainer.create(c, initialParamsOf(c));
  const logp = (await probe.grpoForward({ ...base, flow }, hyper)).logp!.data;
  await probe.release();
  const honest = { ...base, flow: { ...flow, logpOld: Float32Array.from(logp) } };
  const forged = { ...base, flow: { ...flow, logpOld: Float32Array.from(logp, (v, r) => (r === 2 ? v - 10 : v)) } };

  const checked = FlowTrainer.create(c, initialParamsOf(c));
  let excluded: number[] = [];
  const screen = sameVersionScreen({
    batch: { advantages: forged.advantages, logpOld: forged.flow.logpOld }, rowVersions: [4, 4, 4], version: 4, tolerance: c.grpo.logpTolerance,
    actionOf: (row) => flow.actionIndex[row]!, excluded: (rows) => (excluded = rows),
  });
  assert.ok((await checked.grpoStep(forged, hyper, screen)).step.applied);
  assert.deepEqual(excluded, [2]);
  const without = FlowTrainer.create(c, initialParamsOf(c));
  await without.grpoStep({ ...honest, advantages: Float32Array.of(1, 0) }, hyper);
  for (const [k, t] of checked.params) t.data.forEach((v, i) => assert.ok(Math.abs(v - without.params.get(k)!.data[i]!) <= 1e-7, `${k}[${i}]`));
  // honest rows pass: nothing excluded
  excluded = [];
  const again = sameVersionScreen({ batch: { advantages: honest.advantages, logpOld: honest.flow.logpOld }, rowVersions: [4, 4, 4], version: 4, tolerance: c.grpo.logpTolerance, excluded: (rows) => (excluded = rows) });
  assert.equal(again({ logp, ratio: Float32Array.of(1, 1, 1) }), undefined);
  await checked.release();
  await without.release();
});
