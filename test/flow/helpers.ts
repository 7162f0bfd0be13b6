// Shared fixtures of the flow tests: tiny networks, parameters whose every layer carries gradient, and a
// directional finite-difference check of a training graph's loss over all parameters at once.
import assert from 'node:assert/strict';
import type { TensorMap } from '../../lib/checkpoint/tensors.ts';
import { initVelocityParams, velocityParams, type VelocitySpec } from '../../lib/flow/velocity.ts';
import type { Feeds, Fetches, GraphSession } from '../../lib/graph/runtime.ts';
import { gradientsFrom, paramFeeds } from '../../lib/models/feeds.ts';
import { testRandom } from '../graph/gradcheck.ts';

export const resnet: VelocitySpec = { arch: 'resnet', width: 4, depth: 1, timeFrequencies: 4, timeWidth: 8 };
export const unet: VelocitySpec = { arch: 'unet', width: 4, depth: 1, timeFrequencies: 4, timeWidth: 8 };

export function uniform(n: number, rand: () => number, lo = -1, hi = 1): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
}

/** Parameters with a non-zero head and biases, so that every layer receives gradient. */
export function perturbed(spec: VelocitySpec, seed: number): TensorMap {
  const p = initVelocityParams(spec, seed);
  const rand = testRandom(seed + 1);
  for (const [name, t] of p) if (name.startsWith('head') || name.endsWith('.bias')) t.data.set(uniform(t.data.length, rand, -0.1, 0.1));
  return p;
}

function shifted(params: TensorMap, dir: TensorMap, t: number): TensorMap {
  const out: TensorMap = new Map();
  for (const [name, p] of params) {
    const d = dir.get(name)!;
    out.set(name, { shape: p.shape, data: p.data.map((v, i) => v + t * d.data[i]) });
  }
  return out;
}

/**
 * The loss recomputed in float64 from the graph's unreduced terms: a float32 loss cannot resolve the tiny
 * differences of a finite-difference step that is small enough to stay clear of the ReLU kinks.
 */
export interface LossFromTerms {
  outputs: string[];
  loss: (out: Fetches) => number;
}

export const meanOf = (x: Float32Array): number => x.reduce((s, v) => s + v, 0) / x.length;

/** <grad, d> from the graph against (L(p + eps d) - L(p - eps d)) / 2 eps for a random direction d. */
export async function checkGradients(session: GraphSession, spec: VelocitySpec, params: TensorMap, rest: Feeds, terms: LossFromTerms, eps = 1e-4, tol = 1e-2): Promise<void> {
  const rand = testRandom(99);
  const out = await session.run({ ...paramFeeds(params), ...rest });
  const grads = gradientsFrom(out);
  assert.deepEqual([...grads.keys()].sort(), velocityParams(spec).map((p) => p.name).sort(), 'one gradient per parameter');
  // A random direction leaning along sign(grad): a purely random one can be nearly orthogonal to the
  // gradient, and then the float64 difference quotient has nothing to resolve.
  const dir: TensorMap = new Map(velocityParams(spec).map((p) => {
    const g = grads.get(p.name)!.data;
    return [p.name, { shape: p.shape, data: uniform(g.length, rand).map((u, i) => u + 0.5 * Math.sign(g[i])) }];
  }));
  for (const [name, g] of grads) assert.ok(g.data.some((v) => v !== 0), `gradient of ${name} is non-zero`);
  let analytic = 0;
  for (const [name, d] of dir) grads.get(name)!.data.forEach((g, i) => (analytic += g * d.data[i]));
  const f32 = out.loss.data[0];
  const f64 = terms.loss(out);
  assert.ok(Math.abs(f32 - f64) <= 1e-5 * Math.max(1, Math.abs(f64)), `loss ${f32} equals its terms' ${f64}`);
  const lossAt = async (t: number) => terms.loss(await session.run({ ...paramFeeds(shifted(params, dir, t)), ...rest }, terms.outputs));
  const numeric = ((await lossAt(eps)) - (await lossAt(-eps))) / (2 * eps);
  const rel = Math.abs(analytic - numeric) / Math.max(Math.abs(analytic), Math.abs(numeric));
  assert.ok(rel < tol, `directional derivative: analytic ${analytic}, numeric ${numeric}, relative error ${rel}`);
  assert.ok(Math.abs(analytic) > 1e-6, 'non-trivial gradient');
}
