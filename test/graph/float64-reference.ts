// Shared by the exact float64 reference tests of the convolution-like gradients (ConvTranspose, MaxPool): a graph's
// outputs, run in onnxruntime, against reference tensors computed by direct loops in float64.
import assert from 'node:assert/strict';
import { serialize } from '../../lib/graph/onnx.ts';
import type { Graph } from '../../lib/graph/graph.ts';
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
