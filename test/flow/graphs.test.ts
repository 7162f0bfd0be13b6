// The flow graphs on onnxruntime against the TypeScript reference: the step (sde and cps) from the graph's
// own velocity, a = 0 as the Euler step bit for bit, the t = 1 step, the noise scale, the SFT loss, and the
// gradients of the SFT and Flow-GRPO graphs against finite differences.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildFlowGrpoGraph, buildFlowSftGraph, buildFlowStepGraph, type FlowKlForm } from '../../lib/flow/graphs.ts';
import { gaussianLogpMean, odePlan, sdeNoiseScale, stepCoefficients, stepMean, type FlowSamplerType } from '../../lib/flow/sampler.ts';
import { decodeState, encodeState, rolloutFlow } from '../../lib/flow/rollout.ts';
import { initVelocityParams } from '../../lib/flow/velocity.ts';
import { serialize } from '../../lib/graph/onnx.ts';
import { GraphSession, type Feeds } from '../../lib/graph/runtime.ts';
import { paramFeeds, scalarFeed } from '../../lib/models/feeds.ts';
import { testRandom } from '../graph/gradcheck.ts';
import type { VelocitySpec } from '../../lib/flow/velocity.ts';
import { checkGradients, meanOf, perturbed, resnet, uniform, unet } from './helpers.ts';

const R = { height: 8, width: 8 };
const PIX = 3 * R.height * R.width;

async function stepSession(type: FlowSamplerType, spec: VelocitySpec = resnet, r = R): Promise<GraphSession> {
  return GraphSession.create(serialize(buildFlowStepGraph(spec, r, type)));
}

function rowsOf(n: number, rand: () => number, ts: Array<[number, number, number]>, pix = PIX): Feeds {
  const dims = [n, 3, Math.sqrt(pix / 3), Math.sqrt(pix / 3)];
  return {
    x: { data: uniform(n * pix, rand, -2, 2), dims },
    y: { data: uniform(n * pix, rand), dims },
    eps: { data: uniform(n * pix, rand, -2, 2), dims },
    t: { data: Float32Array.from(ts, (r) => r[0]), dims: [n] },
    t_next: { data: Float32Array.from(ts, (r) => r[1]), dims: [n] },
    a: { data: Float32Array.from(ts, (r) => r[2]), dims: [n] },
  };
}

const ROWS: Array<[number, number, number]> = [
  [1, 0.9, 0.7],
  [0.75, 0.5, 1.3],
  [0.3, 0.1, 0.5],
  [0.2, 0, 0.7],
];

for (const type of ['sde', 'cps'] as const) {
  test(`step graph (${type}) equals the TypeScript reference computed from the graph's own velocity`, async () => {
    const session = await stepSession(type);
    const params = perturbed(resnet, 1);
    const rows = ROWS.filter((r) => type === 'sde' || r[1] > 0).map((r): [number, number, number] => (type === 'cps' ? [r[0], r[1], Math.min(r[2], 0.9)] : r));
    const feeds = rowsOf(rows.length, testRandom(2), rows);
    const out = await session.run({ ...paramFeeds(params), ...feeds });
    rows.forEach(([t, tn, a], i) => {
      const c = stepCoefficients(type, Math.fround(t), Math.fround(tn), Math.fround(a));
      const sl = (name: string, src = out[name].data) => src.subarray(i * PIX, (i + 1) * PIX);
      const mean = stepMean(sl('x', feeds.x.data), sl('v'), c);
      const xNext = mean.map((m, j) => m + c.std * feeds.eps.data[i * PIX + j]);
      for (let j = 0; j < PIX; j++) {
        assert.ok(Math.abs(out.mean.data[i * PIX + j] - mean[j]) < 1e-5, `row ${i} mean[${j}]: ${out.mean.data[i * PIX + j]} vs ${mean[j]}`);
        assert.ok(Math.abs(out.x_next.data[i * PIX + j] - xNext[j]) < 1e-5, `row ${i} x_next[${j}]`);
      }
      assert.ok(Math.abs(out.std.data[i] / c.std - 1) < 1e-6, `row ${i} std ${out.std.data[i]} vs ${c.std}`);
      const logp = gaussianLogpMean(sl('x_next'), sl('mean'), c.std);
      assert.ok(Math.abs(out.logp.data[i] - logp) < 1e-4, `row ${i} logp ${out.logp.data[i]} vs ${logp}`);
      for (const v of sl('logp_map')) assert.ok(Number.isFinite(v));
    });
    await session.release();
  });
}

test('step graph with a = 0 gives the Euler step x + v dt bit for bit, and the t = 1 step is finite', async () => {
  const session = await stepSession('sde');
  const params = perturbed(resnet, 3);
  const rows: Array<[number, number, number]> = [[1, 0.8, 0], [0.6, 0.45, 0], [0.1, 0, 0]];
  const feeds = rowsOf(3, testRandom(4), rows);
  const out = await session.run({ ...paramFeeds(params), ...feeds });
  rows.forEach(([t, tn], i) => {
    const dt = Math.fround(Math.fround(tn) - Math.fround(t));
    for (let j = i * PIX; j < (i + 1) * PIX; j++) {
      const euler = Math.fround(feeds.x.data[j] + Math.fround(out.v.data[j] * dt));
      assert.equal(out.x_next.data[j], euler, `row ${i} element ${j}`);
    }
  });
  const atOne = await session.run({ ...paramFeeds(params), ...rowsOf(2, testRandom(5), [[1, 0.9, 0.7], [1, 0.95, 1.3]]) });
  for (const [name, f] of Object.entries(atOne)) for (const v of f.data) assert.ok(Number.isFinite(v), `${name} at t = 1 is finite`);
  await session.release();
});

test('x_next - mean has the empirical std s_t sqrt(-dt) within 2%, in the graph', async () => {
  const r = { height: 32, width: 32 };
  const pix = 3 * 32 * 32;
  for (const type of ['sde', 'cps'] as const) {
    const session = await stepSession(type, resnet, r);
    const [t, tn, a] = type === 'sde' ? [0.8, 0.7, 0.7] : [0.8, 0.7, 0.5];
    const n = 8;
    const rand = testRandom(6);
    const feeds = rowsOf(n, rand, Array.from({ length: n }, () => [t, tn, a]), pix);
    // Standard normals (Box-Muller on the test's own generator, independent of the project's).
    feeds.eps.data.forEach((_, j, e) => (e[j] = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand())));
    const out = await session.run({ ...paramFeeds(perturbed(resnet, 7)), ...feeds });
    let s2 = 0;
    out.x_next.data.forEach((v, j) => (s2 += (v - out.mean.data[j]) ** 2));
    const empirical = Math.sqrt(s2 / (n * pix));
    const expected = stepCoefficients(type, Math.fround(t), Math.fround(tn), Math.fround(a)).std;
    assert.ok(Math.abs(empirical / expected - 1) < 0.02, `${type}: empirical ${empirical}, expected ${expected}`);
    await session.release();
  }
});

test('SFT graph: the rectified-flow loss equals mean((v(x_t, t, y) - (eps - x0))^2) from the step graph', async () => {
  const rand = testRandom(8);
  const n = 3;
  const dims = [n, 3, R.height, R.width];
  const x0 = uniform(n * PIX, rand);
  const y = uniform(n * PIX, rand);
  const eps = uniform(n * PIX, rand, -2, 2);
  const t = Float32Array.of(0.9, 0.35, 0.02);
  const params = perturbed(unet, 9);
  const sft = await GraphSession.create(serialize(buildFlowSftGraph(unet, R)));
  const sftFeeds: Feeds = { x0: { data: x0, dims }, y: { data: y, dims }, eps: { data: eps, dims }, t: { data: t, dims: [n] } };
  const loss = (await sft.run({ ...paramFeeds(params), ...sftFeeds }, ['loss'])).loss.data[0];
  const xt = x0.map((v, j) => (1 - t[Math.floor(j / PIX)]) * v + t[Math.floor(j / PIX)] * eps[j]);
  const step = await stepSession('sde', unet);
  const v = (await step.run({ ...paramFeeds(params), x: { data: xt, dims }, y: { data: y, dims }, eps: { data: eps, dims }, t: { data: t, dims: [n] }, t_next: { data: t.map((x) => x / 2), dims: [n] }, a: { data: new Float32Array(n), dims: [n] } }, ['v'])).v.data;
  let expected = 0;
  v.forEach((vj, j) => (expected += (vj - (eps[j] - x0[j])) ** 2));
  expected /= n * PIX;
  assert.ok(Math.abs(loss / expected - 1) < 1e-5, `loss ${loss} vs ${expected}`);
  await checkGradients(sft, unet, params, sftFeeds, { outputs: ['residual'], loss: (o) => meanOf(o.residual.data.map((r) => r * r)) });
  await sft.release();
  await step.release();
});

function grpoFeeds(n: number, rand: () => number, r: typeof R, dense: boolean, stepOut: { x_next: Float32Array; mean: Float32Array; logp_map: Float32Array; logp: Float32Array }, base: Feeds): Feeds {
  const dims = [n, 3, r.height, r.width];
  const mapDims = [n, 3, r.height - 10, r.width - 10];
  const feeds: Feeds = {
    x: base.x,
    y: base.y,
    t: base.t,
    t_next: base.t_next,
    a: base.a,
    x_next: { data: stepOut.x_next, dims },
    // Behaviour log-densities a little off the current ones, so ratios differ from 1 (inside the clip range).
    logp_old: dense
      ? { data: stepOut.logp_map.map((v) => v + (rand() - 0.5) * 0.2), dims }
      : { data: stepOut.logp.map((v) => v + (rand() - 0.5) * 0.2), dims: [n] },
    advantage: { data: uniform(n, rand), dims: [n] },
    // A reference whose means differ, so the KL term has a gradient.
    ref_mean: { data: stepOut.mean.map((v) => v + (rand() - 0.5) * 0.05), dims },
    clip_low: scalarFeed(0.5),
    clip_high: scalarFeed(0.5),
    dual_clip: scalarFeed(3),
    beta: scalarFeed(0.3),
  };
  if (dense) feeds.advantage_map = { data: uniform(n * 3 * (r.height - 10) * (r.width - 10), rand, -0.2, 0.2), dims: mapDims };
  return feeds;
}

for (const [mode, spec, type] of [['scalar', resnet, 'sde'], ['dense', unet, 'sde'], ['scalar', unet, 'cps']] as const) {
  test(`Flow-GRPO graph (${mode}, ${spec.arch}, ${type}): gradients match finite differences, the KL term as written`, async () => {
    const r = mode === 'dense' ? { height: 12, width: 12 } : R;
    const n = 3;
    const rand = testRandom(10);
    const params = perturbed(spec, 11);
    const step = await stepSession(type, spec, r);
    const base = rowsOf(n, rand, type === 'sde' ? [[1, 0.9, 0.7], [0.75, 0.5, 1.3], [0.4, 0.3, 0.7]] : [[1, 0.9, 0.5], [0.75, 0.5, 0.9], [0.4, 0.3, 0.3]], 3 * r.height * r.width);
    const so = await step.run({ ...paramFeeds(params), ...base });
    const feeds = grpoFeeds(n, rand, r, mode === 'dense', { x_next: so.x_next.data, mean: so.mean.data, logp_map: so.logp_map.data, logp: so.logp.data }, base);
    const grpo = await GraphSession.create(serialize(buildFlowGrpoGraph(spec, r, type, mode)));
    const out = await grpo.run({ ...paramFeeds(params), ...feeds }, ['kl', 'logp', 'ratio']);
    // kl = mean_rows mean_chw((mean - ref)^2) / (2 std^2), from the step graph's mean and std.
    const pix = 3 * r.height * r.width;
    let kl = 0;
    for (let i = 0; i < n; i++) {
      let m = 0;
      for (let j = i * pix; j < (i + 1) * pix; j++) m += (so.mean.data[j] - feeds.ref_mean.data[j]) ** 2;
      kl += m / pix / (2 * so.std.data[i] ** 2);
    }
    kl /= n;
    assert.ok(Math.abs(out.kl.data[0] / kl - 1) < 1e-4, `kl ${out.kl.data[0]} vs ${kl}`);
    for (let i = 0; i < n; i++) assert.ok(Math.abs(out.logp.data[i] - so.logp.data[i]) < 1e-5, `row ${i}: training logp equals the step graph's`);
    const beta = feeds.beta.data[0];
    await checkGradients(grpo, spec, params, feeds, { outputs: ['policy_terms', 'kl_rows'], loss: (o) => meanOf(o.policy_terms.data) + beta * meanOf(o.kl_rows.data) });
    await grpo.release();
    await step.release();
  });
}

for (const type of ['sde', 'cps'] as const) {
  test(`flow.klForm (${type}): exact divides by 2 std^2 of the step, flow_grpo by 2 s_t^2 as train_sd3.py (the same for cps), by hand`, async () => {
    const n = 3;
    const rand = testRandom(30);
    const params = perturbed(resnet, 31);
    const step = await stepSession(type);
    const ts: Array<[number, number, number]> = type === 'sde' ? [[1, 0.9, 0.7], [0.75, 0.5, 1.3], [0.4, 0.3, 0.7]] : [[1, 0.9, 0.5], [0.75, 0.5, 0.9], [0.4, 0.3, 0.3]];
    const base = rowsOf(n, rand, ts);
    const so = await step.run({ ...paramFeeds(params), ...base });
    const feeds = grpoFeeds(n, rand, R, false, { x_next: so.x_next.data, mean: so.mean.data, logp_map: so.logp_map.data, logp: so.logp.data }, base);
    const kl: Record<FlowKlForm, Float32Array> = { exact: new Float32Array(), flow_grpo: new Float32Array() };
    for (const form of ['exact', 'flow_grpo'] as const) {
      const grpo = await GraphSession.create(serialize(buildFlowGrpoGraph(resnet, R, type, 'scalar', form)));
      kl[form] = (await grpo.run({ ...paramFeeds(params), ...feeds }, ['kl_rows'])).kl_rows.data;
      await grpo.release();
    }
    ts.forEach(([t, tn, a], i) => {
      const [t32, tn32, a32] = [Math.fround(t), Math.fround(tn), Math.fround(a)];
      let m = 0;
      for (let j = i * PIX; j < (i + 1) * PIX; j++) m += (so.mean.data[j] - feeds.ref_mean.data[j]) ** 2;
      m /= PIX;
      const std = stepCoefficients(type, t32, tn32, a32).std;
      // flow_grpo's std_dev_t: s_t for sde (its log-density's std is s_t sqrt(-dt)); the step's std for cps.
      const s = type === 'sde' ? sdeNoiseScale(t32, tn32, a32) : std;
      const want = { exact: m / (2 * std * std), flow_grpo: m / (2 * s * s) };
      for (const form of ['exact', 'flow_grpo'] as const) {
        assert.ok(Math.abs(kl[form][i] / want[form] - 1) < 1e-4, `${form} row ${i}: kl ${kl[form][i]} vs ${want[form]}`);
      }
    });
    if (type === 'sde') assert.ok(kl.exact[0] > 5 * kl.flow_grpo[0], 'the two forms differ on sde rows (by 1 / (-dt))');
    await step.release();
  });
}

test('predict residual: v = (x - y - f) / t from the body f, a fresh network samples y itself, the SFT loss is mean((x0_hat - x0)^2) with finite-difference gradients', async () => {
  const residual = { ...resnet, predict: 'residual' as const };
  const rand = testRandom(12);
  const n = 3;
  const dims = [n, 3, R.height, R.width];
  const params = perturbed(resnet, 13);
  const rows = rowsOf(n, rand, [[1, 0.9, 0], [0.6, 0.3, 0], [0.05, 0, 0]]);
  // The same parameters under both readings: the velocity graph's v is the body's output f.
  const body = await stepSession('sde', resnet);
  const res = await stepSession('sde', residual);
  const f = (await body.run({ ...paramFeeds(params), ...rows }, ['v'])).v.data;
  const v = (await res.run({ ...paramFeeds(params), ...rows }, ['v'])).v.data;
  const t = rows.t.data;
  for (let j = 0; j < v.length; j++) {
    const expected = (rows.x.data[j] - rows.y.data[j] - f[j]) / t[Math.floor(j / PIX)];
    assert.ok(Math.abs(v[j] - expected) <= 1e-5 * Math.max(1, Math.abs(expected)), `v[${j}] ${v[j]} vs ${expected}`);
  }
  // A fresh network (zero head): the ODE from pure noise ends on the corrupted image.
  const fresh = initVelocityParams(residual, 14);
  const corrupted = uniform(n * PIX, rand, 0, 1);
  const roll = await rolloutFlow(res, fresh, { corrupted, n, resolution: R, seeds: [1, 2, 3] }, odePlan(6, 3), { start: 'noise' });
  roll.image.forEach((p, j) => assert.ok(Math.abs(p - corrupted[j]) < 1e-5, `pixel ${j}: ${p} vs the corrupted ${corrupted[j]}`));
  // SFT: the loss on x0_hat = x_t - t v, from the step graph's v at x_t.
  const x0 = uniform(n * PIX, rand);
  const eps = uniform(n * PIX, rand, -2, 2);
  const ts = Float32Array.of(0.9, 0.35, 0.02);
  const xt = x0.map((u, j) => (1 - ts[Math.floor(j / PIX)]) * u + ts[Math.floor(j / PIX)] * eps[j]);
  const vt = (await res.run({ ...paramFeeds(params), x: { data: xt, dims }, y: rows.y, eps: { data: eps, dims }, t: { data: ts, dims: [n] }, t_next: { data: ts.map((x) => x / 2), dims: [n] }, a: { data: new Float32Array(n), dims: [n] } }, ['v'])).v.data;
  let expected = 0;
  vt.forEach((vj, j) => (expected += (xt[j] - ts[Math.floor(j / PIX)] * vj - x0[j]) ** 2));
  expected /= n * PIX;
  const sft = await GraphSession.create(serialize(buildFlowSftGraph(residual, R)));
  const sftFeeds: Feeds = { x0: { data: x0, dims }, y: rows.y, eps: { data: eps, dims }, t: { data: ts, dims: [n] } };
  const loss = (await sft.run({ ...paramFeeds(params), ...sftFeeds }, ['loss'])).loss.data[0];
  assert.ok(Math.abs(loss / expected - 1) < 1e-4, `loss ${loss} vs ${expected}`);
  await checkGradients(sft, residual, params, sftFeeds, { outputs: ['residual'], loss: (o) => meanOf(o.residual.data.map((r, j) => (r * ts[Math.floor(j / PIX)]) ** 2)) });
  await Promise.all([body.release(), res.release(), sft.release()]);
});

test('residual space: states round-trip, v = (x - f) / t (the corrupted image is the state 0), a fresh network samples the corrupted image, a = 0 is still the Euler step', async () => {
  const space = { kind: 'residual' as const, scale: 0.1 };
  const spec = { ...resnet, predict: 'residual' as const, space: 'residual' as const };
  const rand = testRandom(21);
  const n = 2;
  const corrupted = uniform(n * PIX, rand, 0, 1);
  const clean = uniform(n * PIX, rand, 0, 1);
  // x = (clean - y) / s and back; the corrupted image is the state 0.
  const x0 = encodeState(space, clean, corrupted);
  x0.forEach((v, j) => assert.ok(Math.abs(v - (clean[j] - corrupted[j]) / 0.1) < 1e-4, `state ${j}`));
  decodeState(space, x0, corrupted).forEach((v, j) => assert.ok(Math.abs(v - clean[j]) < 1e-6, `round trip ${j}`));
  encodeState(space, corrupted, corrupted).forEach((v) => assert.equal(v, 0));
  assert.throws(() => encodeState(space, clean, corrupted.subarray(1)), /flow space/);
  // The same parameters read as a velocity network give the body's f.
  const params = perturbed(resnet, 22);
  const rows = rowsOf(3, rand, [[1, 0.9, 0], [0.6, 0.3, 0], [0.05, 0, 0]]);
  const body = await stepSession('sde', resnet);
  const res = await stepSession('sde', spec);
  const f = (await body.run({ ...paramFeeds(params), ...rows }, ['v'])).v.data;
  const out = await res.run({ ...paramFeeds(params), ...rows });
  rows.t.data.forEach((t, i) => {
    const dt = Math.fround(Math.fround(rows.t_next.data[i]) - Math.fround(t));
    for (let j = i * PIX; j < (i + 1) * PIX; j++) {
      const expected = (rows.x.data[j] - f[j]) / t;
      assert.ok(Math.abs(out.v.data[j] - expected) <= 1e-5 * Math.max(1, Math.abs(expected)), `v[${j}] ${out.v.data[j]} vs ${expected}`);
      assert.equal(out.x_next.data[j], Math.fround(rows.x.data[j] + Math.fround(out.v.data[j] * dt)), `a = 0: Euler, element ${j}`);
    }
  });
  // A fresh network: the ODE from noise (and from the corrupted start) ends on the corrupted image.
  const fresh = initVelocityParams(spec, 23);
  for (const start of ['noise', 'corrupted'] as const) {
    const plan = odePlan(5, 3, start === 'noise' ? 1 : 0.6);
    const roll = await rolloutFlow(res, fresh, { corrupted, n, resolution: R, seeds: [4, 5] }, plan, { start, space });
    roll.image.forEach((p, j) => assert.ok(Math.abs(p - corrupted[j]) < 1e-5, `${start}: pixel ${j} ${p} vs the corrupted ${corrupted[j]}`));
  }
  await Promise.all([body.release(), res.release()]);
});

test('inputGate: the body sees (1 - t) x (nothing of the noise at t = 1); the step still uses x itself', async () => {
  const gated = { ...resnet, predict: 'residual' as const, space: 'residual' as const, inputGate: true };
  const rand = testRandom(31);
  const params = perturbed(resnet, 32);
  const rows = rowsOf(3, rand, [[1, 0.9, 0.7], [0.6, 0.3, 0], [0.2, 0, 0]]);
  const t = rows.t.data;
  const damped = rows.x.data.map((v, j) => v * (1 - t[Math.floor(j / PIX)]));
  const body = await stepSession('sde', resnet);
  const res = await stepSession('sde', gated);
  const f = (await body.run({ ...paramFeeds(params), ...rows, x: { data: damped, dims: rows.x.dims } }, ['v'])).v.data;
  const v = (await res.run({ ...paramFeeds(params), ...rows }, ['v'])).v.data;
  for (let j = 0; j < v.length; j++) {
    const expected = (rows.x.data[j] - f[j]) / t[Math.floor(j / PIX)];
    assert.ok(Math.abs(v[j] - expected) <= 1e-5 * Math.max(1, Math.abs(expected)), `v[${j}] ${v[j]} vs ${expected}`);
  }
  // At t = 1 the body's output f = x - t v does not depend on x.
  const x2 = uniform(rows.x.data.length, rand, -2, 2);
  const v2 = (await res.run({ ...paramFeeds(params), ...rows, x: { data: x2, dims: rows.x.dims } }, ['v'])).v.data;
  for (let j = 0; j < PIX; j++) assert.ok(Math.abs((rows.x.data[j] - v[j]) - (x2[j] - v2[j])) < 1e-5, `t = 1, element ${j}: the body saw x`);
  await Promise.all([body.release(), res.release()]);
});

test('residual space with the input gate: the SFT loss is mean((x0_hat - x0)^2) with x0_hat = x_t - t v, and its gradients match finite differences', async () => {
  const spec = { ...resnet, predict: 'residual' as const, space: 'residual' as const, inputGate: true };
  const rand = testRandom(41);
  const n = 3;
  const dims = [n, 3, R.height, R.width];
  const params = perturbed(resnet, 42);
  const x0 = uniform(n * PIX, rand, -2, 2);
  const y = uniform(n * PIX, rand);
  const eps = uniform(n * PIX, rand, -2, 2);
  const ts = Float32Array.of(1, 0.4, 0.03);
  const xt = x0.map((u, j) => (1 - ts[Math.floor(j / PIX)]) * u + ts[Math.floor(j / PIX)] * eps[j]);
  const res = await stepSession('sde', spec);
  const vt = (await res.run({ ...paramFeeds(params), x: { data: xt, dims }, y: { data: y, dims }, eps: { data: eps, dims }, t: { data: ts, dims: [n] }, t_next: { data: ts.map((x) => x / 2), dims: [n] }, a: { data: new Float32Array(n), dims: [n] } }, ['v'])).v.data;
  let expected = 0;
  vt.forEach((vj, j) => (expected += (xt[j] - ts[Math.floor(j / PIX)] * vj - x0[j]) ** 2));
  expected /= n * PIX;
  const sft = await GraphSession.create(serialize(buildFlowSftGraph(spec, R)));
  const feeds: Feeds = { x0: { data: x0, dims }, y: { data: y, dims }, eps: { data: eps, dims }, t: { data: ts, dims: [n] } };
  const loss = (await sft.run({ ...paramFeeds(params), ...feeds }, ['loss'])).loss.data[0];
  assert.ok(Math.abs(loss / expected - 1) < 1e-4, `loss ${loss} vs ${expected}`);
  await checkGradients(sft, spec, params, feeds, { outputs: ['residual'], loss: (o) => meanOf(o.residual.data.map((r, j) => (r * ts[Math.floor(j / PIX)]) ** 2)) });
  await Promise.all([res.release(), sft.release()]);
});
