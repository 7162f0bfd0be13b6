// The policy, GRPO and SFT graphs: identity at initialisation, log-prob agreement between the rollout and
// training graphs, and whole-graph gradients against finite differences over all parameters at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildGrpoGraph, buildPolicyGraph, buildSftGraph, PSNR_LOSS_MSE_FLOOR } from '../../lib/models/graphs.ts';
import { initPolicyParams, trainableParams, type PolicySpec } from '../../lib/models/policy.ts';
import { serialize } from '../../lib/graph/onnx.ts';
import { GraphSession, type Feeds } from '../../lib/graph/runtime.ts';
import { gradientsFrom, paramFeeds, scalarFeed } from '../../lib/models/feeds.ts';
import type { TensorMap } from '../../lib/checkpoint/tensors.ts';
import type { Value } from '../../lib/graph/graph.ts';
import { testRandom } from '../graph/gradcheck.ts';

const R = { height: 16, width: 16 };
const N = 3;
const PIX = N * 3 * R.height * R.width;
const dims = [N, 3, R.height, R.width];
const specs: PolicySpec[] = [
  { arch: 'resnet', width: 4, depth: 2, logStd: Math.log(0.05), learnLogStd: true },
  { arch: 'unet', width: 4, depth: 2, logStd: Math.log(0.05), learnLogStd: true },
];

function uniform(n: number, rand: () => number, lo = 0, hi = 1): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
}

/** Parameters with a non-zero head, so that every layer receives gradient. */
function perturbed(spec: PolicySpec, seed: number): TensorMap {
  const p = initPolicyParams(spec, seed);
  const rand = testRandom(seed + 1);
  for (const [name, t] of p) if (name.startsWith('head')) t.data.set(uniform(t.data.length, rand, -0.1, 0.1));
  return p;
}

function shifted(params: TensorMap, dir: TensorMap, t: number): TensorMap {
  const out: TensorMap = new Map();
  for (const [name, p] of params) {
    const d = dir.get(name);
    out.set(name, { shape: p.shape, data: d ? p.data.map((v, i) => v + t * d.data[i]) : p.data });
  }
  return out;
}

/** Directional derivative check of a training graph's loss over all trainable parameters at once. */
async function checkWholeGraph(session: GraphSession, spec: PolicySpec, params: TensorMap, rest: Feeds, eps: number, along: (name: string) => boolean = () => true): Promise<void> {
  const rand = testRandom(99);
  const dir: TensorMap = new Map(trainableParams(spec).map((p) => {
    const d = uniform(params.get(p.name)!.data.length, rand, -1, 1);
    return [p.name, { shape: p.shape, data: along(p.name) ? d : d.fill(0) }];
  }));
  const out = await session.run({ ...paramFeeds(params), ...rest });
  const grads = gradientsFrom(out);
  assert.deepEqual([...grads.keys()].sort(), [...dir.keys()].sort(), 'one gradient per trainable parameter');
  let analytic = 0;
  for (const [name, d] of dir) grads.get(name)!.data.forEach((g, i) => (analytic += g * d.data[i]));
  const lossAt = async (t: number) => (await session.run({ ...paramFeeds(shifted(params, dir, t)), ...rest }, ['loss'])).loss.data[0];
  const numeric = ((await lossAt(eps)) - (await lossAt(-eps))) / (2 * eps);
  const rel = Math.abs(analytic - numeric) / Math.max(Math.abs(analytic), Math.abs(numeric));
  assert.ok(rel < 1e-2, `directional derivative: analytic ${analytic}, numeric ${numeric}, relative error ${rel}`);
  assert.ok(Math.abs(analytic) > 1e-6, 'non-trivial gradient');
}

for (const spec of specs) {
  test(`${spec.arch}: a fresh policy is the identity, and rollout and training log-probs agree`, async () => {
    const rand = testRandom(3);
    const params = initPolicyParams(spec, 1);
    const policy = await GraphSession.create(serialize(buildPolicyGraph(spec, R)));
    const image = uniform(PIX, rand);
    const noise = uniform(PIX, rand, -2, 2);
    const out = await policy.run({ ...paramFeeds(params), image: { data: image, dims }, noise: { data: noise, dims } });
    assert.deepEqual(out.mean.data, image, 'zero-initialised head returns the image');
    const sigma = 0.05;
    out.action.data.forEach((a, i) => assert.ok(Math.abs(a - (image[i] + sigma * noise[i])) < 1e-6));

    // logp = mean over elements of -z^2/2 - log sigma - log(2 pi)/2, computed here independently.
    for (let n = 0; n < N; n++) {
      let s = 0;
      const per = PIX / N;
      for (let i = 0; i < per; i++) s += -0.5 * noise[n * per + i] ** 2 - Math.log(sigma) - 0.5 * Math.log(2 * Math.PI);
      assert.ok(Math.abs(out.logp.data[n] - s / per) < 1e-4, `logp[${n}] ${out.logp.data[n]} vs ${s / per}`);
    }

    const p2 = perturbed(spec, 5);
    const o2 = await policy.run({ ...paramFeeds(p2), image: { data: image, dims }, noise: { data: noise, dims } });
    const grpo = await GraphSession.create(serialize(buildGrpoGraph(spec, R)));
    const feeds: Feeds = {
      ...paramFeeds(p2),
      image: { data: image, dims },
      action: { data: o2.action.data, dims },
      logp_old: { data: o2.logp.data, dims: [N] },
      advantage: { data: Float32Array.of(1, -0.5, 0.25), dims: [N] },
      ref_mean: { data: o2.mean.data, dims },
      clip_low: scalarFeed(1e-4),
      clip_high: scalarFeed(1e-4),
      dual_clip: scalarFeed(3),
      beta: scalarFeed(0.01),
    };
    const t = await grpo.run(feeds);
    for (let n = 0; n < N; n++) assert.ok(Math.abs(t.logp.data[n] - o2.logp.data[n]) <= 1e-6, `logp ${t.logp.data[n]} vs ${o2.logp.data[n]}`);
    const own = await grpo.run({ ...feeds, logp_old: { data: t.logp.data, dims: [N] } });
    assert.deepEqual(Array.from(own.ratio.data), [1, 1, 1], 'ratio is exactly 1 against the current log-prob');
    assert.equal(own.clip_fraction.data[0], 0);
    assert.equal(own.kl.data[0], 0, 'no KL against itself');
  });

  test(`${spec.arch}: GRPO training graph gradient matches finite differences over all parameters`, async () => {
    const rand = testRandom(11);
    const params = perturbed(spec, 7);
    const image = uniform(PIX, rand);
    const policy = await GraphSession.create(serialize(buildPolicyGraph(spec, R)));
    const roll = await policy.run({ ...paramFeeds(params), image: { data: image, dims }, noise: { data: uniform(PIX, rand, -2, 2), dims } });
    const grpo = await GraphSession.create(serialize(buildGrpoGraph(spec, R)));
    // Behaviour log-probs offset so one ratio sits inside the clip range and two clearly outside it.
    const logpOld = Float32Array.from(roll.logp.data, (v, i) => v + [0.01, 0.5, -0.5][i]);
    const rest: Feeds = {
      image: { data: image, dims },
      action: { data: roll.action.data, dims },
      logp_old: { data: logpOld, dims: [N] },
      advantage: { data: Float32Array.of(1.3, -0.7, 0.9), dims: [N] },
      ref_mean: { data: uniform(PIX, rand), dims },
      clip_low: scalarFeed(0.2),
      clip_high: scalarFeed(0.3),
      dual_clip: scalarFeed(3),
      beta: scalarFeed(0.05),
    };
    const diag = await grpo.run({ ...paramFeeds(params), ...rest });
    assert.ok(diag.clip_fraction.data[0] > 0 && diag.clip_fraction.data[0] < 1, `a mix of clipped and unclipped ratios (${diag.clip_fraction.data[0]})`);
    await checkWholeGraph(grpo, spec, params, rest, 1e-3);
  });

  test(`${spec.arch}: SFT graph gradients (L2, L1 and PSNR) match finite differences`, async () => {
    const rand = testRandom(13);
    const params = perturbed(spec, 9);
    // Targets well away from the mean, so that |mean - target| has no kink within the difference step.
    const image = uniform(PIX, rand);
    const target = image.map((v) => v + (rand() < 0.5 ? -1 : 1) * (0.3 + 0.4 * rand()));
    const rest: Feeds = { image: { data: image, dims }, target: { data: target, dims } };
    for (const kind of ['l2', 'l1', 'psnr'] as const) {
      const sft = await GraphSession.create(serialize(buildSftGraph({ ...spec, learnLogStd: false }, R, kind)));
      await checkWholeGraph(sft, { ...spec, learnLogStd: false }, params, rest, 3e-4);
    }
  });
}

test('SFT psnr loss: minus the mean per-image PSNR (floor 1e-5 on each MSE), computed independently', async () => {
  const spec: PolicySpec = { arch: 'resnet', width: 4, depth: 1, logStd: Math.log(0.05), learnLogStd: false };
  // A fresh policy returns its input (zero head), so the loss is that of the image itself against the target.
  const params = initPolicyParams(spec, 5);
  const rand = testRandom(31);
  const image = uniform(PIX, rand);
  // Image 0 badly off, image 1 mildly, image 2 untouched (its MSE is 0: the floor keeps the loss finite).
  const per = PIX / N;
  const target = image.map((v, i) => (i < per ? v + 0.3 * (rand() - 0.5) : i < 2 * per ? v + 0.01 * (rand() - 0.5) : v));
  const sft = await GraphSession.create(serialize(buildSftGraph(spec, R, 'psnr')));
  const out = await sft.run({ ...paramFeeds(params), image: { data: image, dims }, target: { data: target, dims } });
  let expected = 0;
  for (let n = 0; n < N; n++) {
    let se = 0;
    for (let i = n * per; i < (n + 1) * per; i++) se += (image[i] - target[i]) ** 2;
    expected += (10 * Math.log10(se / per + PSNR_LOSS_MSE_FLOOR)) / N;
  }
  assert.ok(Number.isFinite(out.loss.data[0]) && Math.abs(out.loss.data[0] - expected) < 1e-3, `loss ${out.loss.data[0]} vs ${expected}`);
  // The untouched image contributes -50 dB: the loss is below what images 0 and 1 alone would give.
  assert.ok(expected < -20, `expected ${expected}`);
});

test('dense GRPO graph: finite differences, agreement with the scalar graph at zero map, spreading as the reference', async () => {
  const spec: PolicySpec = { arch: 'resnet', width: 4, depth: 1, logStd: Math.log(0.05), learnLogStd: true };
  const rand = testRandom(21);
  const params = perturbed(spec, 3);
  const image = uniform(PIX, rand);
  const policy = await GraphSession.create(serialize(buildPolicyGraph(spec, R)));
  const roll = await policy.run({ ...paramFeeds(params), image: { data: image, dims }, noise: { data: uniform(PIX, rand, -2, 2), dims } });
  const dense = await GraphSession.create(serialize(buildGrpoGraph(spec, R, 'dense')));
  const scalar = await GraphSession.create(serialize(buildGrpoGraph(spec, R, 'scalar')));
  const h = R.height - 10;
  const mapDims = [N, 3, h, h];
  const advantage = Float32Array.of(0.8, -1.1, 0.3);
  const common: Feeds = {
    image: { data: image, dims },
    action: { data: roll.action.data, dims },
    advantage: { data: advantage, dims: [N] },
    ref_mean: { data: uniform(PIX, rand), dims },
    clip_low: scalarFeed(0.2),
    clip_high: scalarFeed(0.2),
    dual_clip: scalarFeed(3),
    beta: scalarFeed(0.05),
  };
  // With a zero map and the behaviour log-density equal to the current one, dense and scalar agree.
  const zeroMap = { data: new Float32Array(N * 3 * h * h), dims: mapDims };
  const d0 = await dense.run({ ...paramFeeds(params), ...common, logp_old: { data: roll.logp_map.data, dims }, advantage_map: zeroMap });
  const s0 = await scalar.run({ ...paramFeeds(params), ...common, logp_old: { data: roll.logp.data, dims: [N] } });
  assert.ok(Math.abs(d0.loss.data[0] - s0.loss.data[0]) < 1e-6, `loss ${d0.loss.data[0]} vs ${s0.loss.data[0]}`);
  for (const name of trainableParams(spec).map((p) => `grad.${p.name}`)) {
    const a = d0[name].data;
    const b = s0[name].data;
    let num = 0;
    let den = 0;
    a.forEach((v, i) => {
      num += (v - b[i]) ** 2;
      den += b[i] ** 2;
    });
    assert.ok(Math.sqrt(num / Math.max(den, 1e-30)) < 1e-4, `${name} differs between dense (zero map) and scalar`);
  }
  assert.deepEqual(Array.from(d0.ratio.data), [1, 1, 1]);

  // Finite differences with a real map and off-policy behaviour densities (some elements clipped).
  const map = { data: uniform(N * 3 * h * h, rand, -2, 2), dims: mapDims };
  // Offsets either well inside the clip range or well outside it, so no element sits on a kink.
  const logpOld = { data: roll.logp_map.data.map((v) => v + (rand() < 0.5 ? -1 : 1) * (rand() < 0.5 ? 0.03 : 0.6)), dims };
  const rest: Feeds = { ...common, logp_old: logpOld, advantage_map: map };
  const diag = await dense.run({ ...paramFeeds(params), ...rest });
  assert.ok(diag.clip_fraction.data[0] > 0 && diag.clip_fraction.data[0] < 1);
  await checkWholeGraph(dense, spec, params, rest, 3e-4);
});

test('spreading the SSIM advantage map onto pixels matches the TypeScript reference', async () => {
  const { Graph } = await import('../../lib/graph/graph.ts');
  const { spreadSsimMap } = await import('../../lib/models/graphs.ts');
  const { spreadToPixels } = await import('../../lib/grpo/advantages.ts');
  const { gaussianWindow1d } = await import('../../lib/models/ssim.ts');
  const r = { height: 16, width: 20 };
  const g = new Graph();
  const m = g.input('m', [1, 3, 6, 10]);
  g.output('p', spreadSsimMap(m, r));
  const s = await GraphSession.create(serialize(g));
  const rand = testRandom(8);
  const D = uniform(3 * 6 * 10, rand, -1, 1);
  const out = (await s.run({ m: { data: D, dims: [1, 3, 6, 10] } })).p.data;
  const ref = spreadToPixels(D, 3, 6, 10, gaussianWindow1d());
  assert.equal(out.length, ref.length);
  out.forEach((v, i) => assert.ok(Math.abs(v - ref[i]) < 1e-5, `pixel ${i}: ${v} vs ${ref[i]}`));
  const mean = (x: ArrayLike<number>) => Array.from(x).reduce((a, b) => a + b, 0) / x.length;
  assert.ok(Math.abs(mean(out) - mean(D)) < 1e-5, 'pixel weights average to the map mean');
});

test('direct reward backprop graph: its ssim and clip_cos equal the reward graph on the clamped mean; gradients match finite differences; a spliced encoder is refused', async () => {
  const { buildRewardBackpropGraph, buildRewardGraph } = await import('../../lib/models/graphs.ts');
  const { builtinEncoderModel, BUILTIN_ENCODER_NAME } = await import('../../lib/models/encoder.ts');
  const spec: PolicySpec = { arch: 'resnet', width: 4, depth: 1, logStd: Math.log(0.05), learnLogStd: true };
  const rand = testRandom(31);
  const params = perturbed(spec, 4);
  // Images away from 0 and 1, so that few pixels sit on the clamp's kinks during finite differences.
  const image = uniform(PIX, rand, 0.2, 0.8);
  const reference = uniform(PIX, rand);
  const backprop = await GraphSession.create(serialize(buildRewardBackpropGraph(spec, R, BUILTIN_ENCODER_NAME)));
  const rest: Feeds = {
    image: { data: image, dims },
    reference: { data: reference, dims },
    d_ssim: { data: Float32Array.of(1, 0.5, 2), dims: [N] },
    d_clip_cos: { data: Float32Array.of(0.2, 0.7, 0.1), dims: [N] },
  };
  const out = await backprop.run({ ...paramFeeds(params), ...rest });

  // The components are the reward graph's, scored on the clamped policy mean.
  const policy = await GraphSession.create(serialize(buildPolicyGraph(spec, R)));
  const mean = (await policy.run({ ...paramFeeds(params), image: { data: image, dims }, noise: { data: new Float32Array(PIX), dims } })).mean.data;
  const reward = await GraphSession.create(serialize(buildRewardGraph(R, { encoder: builtinEncoderModel(), encoderName: BUILTIN_ENCODER_NAME })));
  const scored = await reward.run({ candidate: { data: mean.map((v) => Math.min(1, Math.max(0, v))), dims }, reference: { data: reference, dims } });
  for (const k of ['ssim', 'clip_cos'] as const) {
    out[k].data.forEach((v, i) => assert.ok(Math.abs(v - scored[k].data[i]) < 1e-5, `${k}[${i}] ${v} vs reward graph ${scored[k].data[i]}`));
  }
  // loss = -mean(d_ssim * ssim + d_clip_cos * clip_cos)
  let expected = 0;
  for (let i = 0; i < N; i++) expected -= (rest.d_ssim.data[i] * out.ssim.data[i] + rest.d_clip_cos.data[i] * out.clip_cos.data[i]) / N;
  assert.ok(Math.abs(out.loss.data[0] - expected) < 1e-5, `loss ${out.loss.data[0]} vs ${expected}`);

  // Along the head's parameters, whose perturbation moves no ReLU kink upstream: what is new here is the
  // backward pass through the clamp, SSIM and the encoder (the policy's own layers are checked above, and
  // along them the SSIM loss of noise images is so curved across ReLU kinks that no step size is clean).
  // Each term alone, then both.
  const only = (dS: number, dC: number): Feeds => ({ ...rest, d_ssim: { data: new Float32Array(N).fill(dS), dims: [N] }, d_clip_cos: { data: new Float32Array(N).fill(dC), dims: [N] } });
  // The built-in encoder's ReLUs put O(step) kinks in the cosine, so its gradient is checked through a
  // smooth stand-in encoder (the same convolution and pooling ops, tanh for ReLU); the built-in one's ops
  // are each checked in test/graph/ops.test.ts.
  const head = (name: string) => name.startsWith('head.');
  const { avgPool, conv, reshape, tanh } = await import('../../lib/graph/ops.ts');
  const smooth = (x: Value) => {
    const w = x.graph.constant(uniform(4 * 3 * 3 * 3, testRandom(7), -0.5, 0.5), [4, 3, 3, 3]);
    return reshape(tanh(conv(avgPool(x, 8), w, undefined, { strides: [2, 2], pads: [1, 1, 1, 1] })), [x.shape[0], 4 * 14 * 14]);
  };
  const smoothBackprop = await GraphSession.create(serialize(buildRewardBackpropGraph(spec, R, 'smooth-test-encoder', smooth)));
  await checkWholeGraph(smoothBackprop, spec, params, only(1, 0), 1e-3, head);
  await checkWholeGraph(smoothBackprop, spec, params, only(0, 1), 1e-3, head);
  await checkWholeGraph(smoothBackprop, spec, params, rest, 1e-3, head);
  assert.throws(() => buildRewardBackpropGraph(spec, R, 'my-clip.onnx'), /only the built-in one .* my-clip\.onnx is spliced from ONNX and forward-only/);
});
