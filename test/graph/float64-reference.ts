// Shared by the exact float64 reference tests of the convolution-like gradients (Conv, ConvTranspose, MaxPool): a graph's
// outputs, run in onnxruntime, against reference tensors computed by direct loops in float64.
import assert from 'node:assert/strict';
import { serialize } from '../../lib/graph/onnx.ts';
import { Graph, type Value } from '../../lib/graph/graph.ts';
import { gradients } from '../../lib/graph/autodiff.ts';
import { mul, reduceSum } from '../../lib/graph/ops.ts';
import { GraphSession, type Feeds } from '../../lib/graph/runtime.ts';
import { testRandom } from './gradcheck.ts';

/** A pair of per-axis values (kernel, stride, dilation); pads as top, left, bottom, right. */
export type Pair = [number, number];
export type Pads = [number, number, number, number];

/** Float32 sums of at most a few hundred terms: far below this relative to the tensor's scale. */
export const TOL = 1e-5;

/** Uniform values in [-1, 1) from a seeded stream. */
export function uniformFrom(seed: number): (len: number) => Float32Array {
  const rand = testRandom(seed);
  return (len: number) => Float32Array.from({ length: len }, () => rand() * 2 - 1);
}

export const sizeOf = (dims: readonly number[]): number => dims.reduce((p, q) => p * q, 1);

/** The largest difference relative to the reference's largest magnitude (the float32 scale of the tensor). */
export function scaledError(got: Float32Array, want: Float64Array): { err: number; scale: number; at: number } {
  assert.equal(got.length, want.length, 'sizes');
  let err = 0;
  let scale = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]!));
    const e = Math.abs(got[i]! - want[i]!);
    if (!(e <= err)) [err, at] = [e, i]; // NaN counts as the worst
  }
  return { err: scale > 0 ? err / scale : err, scale, at };
}

/** Runs `g` on `feeds` and asserts each named output against its float64 reference (within TOL of its scale). */
export async function assertOutputs(g: Graph, feeds: Feeds, want: Record<string, Float64Array>, label: string): Promise<void> {
  const session = await GraphSession.create(serialize(g));
  try {
    const out = await session.run(feeds);
    for (const [name, ref] of Object.entries(want)) {
      const got = out[name]!;
      const { err, scale, at } = scaledError(got.data, ref);
      assert.ok(scale > 0, `${label}: ${name} is all zeros, the case exercises nothing`);
      assert.ok(err < TOL, `${label}: ${name}[${at}] is ${got.data[at]}, reference ${ref[at]} (error ${err.toExponential(2)} of the scale ${scale.toPrecision(3)})`);
    }
  } finally {
    await session.release();
  }
}

/** A layer's outputs computed by direct loops in float64: y and, for the loss sum(y * dy), its gradients. */
export interface LayerReference { y: Float64Array; dx: Float64Array; dw: Float64Array; db: Float64Array; outH: number; outW: number }

/**
 * y = op(x, w, b) on random inputs (seeded): its output size, forward and input, weight and bias gradients, run in
 * onnxruntime, against `reference` on the same inputs (within TOL of each tensor's scale).
 */
export async function checkLayerGradients(o: {
  x: [number, number, number, number]; w: [number, number, number, number]; cout: number; seed: number; label: string;
  op: (x: Value, w: Value, b: Value) => Value;
  reference: (x: Float32Array, w: Float32Array, b: Float32Array, dy: Float32Array) => LayerReference;
}): Promise<void> {
  const uniform = uniformFrom(o.seed);
  const g = new Graph();
  const x = g.input('x', o.x);
  const w = g.input('w', o.w);
  const b = g.input('b', [o.cout]);
  const y = o.op(x, w, b);
  const dyIn = g.input('dy', y.shape);
  const [gx, gw, gb] = gradients(reduceSum(mul(y, dyIn)), [x, w, b]);
  g.output('y', y);
  g.output('dx', gx!);
  g.output('dw', gw!);
  g.output('db', gb!);
  const xs = uniform(sizeOf(o.x));
  const ws = uniform(sizeOf(o.w));
  const bs = uniform(o.cout);
  const yDims = y.shape as number[];
  const dys = uniform(sizeOf(yDims));
  const ref = o.reference(xs, ws, bs, dys);
  assert.deepEqual(yDims.slice(2), [ref.outH, ref.outW], `${o.label}: output size`);
  const feeds: Feeds = { x: { data: xs, dims: o.x }, w: { data: ws, dims: o.w }, b: { data: bs, dims: [o.cout] }, dy: { data: dys, dims: yDims } };
  await assertOutputs(g, feeds, { y: ref.y, dx: ref.dx, dw: ref.dw, db: ref.db }, o.label);
}
