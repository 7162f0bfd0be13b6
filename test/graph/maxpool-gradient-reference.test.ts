// MaxPool's forward and input gradient (maxPoolRule, lib/graph/conv-gradients.ts, run in onnxruntime) against an exact
// float64 reference: direct loops over the ONNX MaxPool definition (window at (o * stride - pad_begin + k * dilation),
// padding never the maximum), the gradient routed to the window's first maximum in row-major order, as PyTorch's
// max_pool2d records it (a later equal value does not replace it). Inputs are drawn from a few levels so windows hold
// ties; finite differences (test/graph/nn-ops.test.ts) step across a tie and cannot check this.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../../lib/graph/graph.ts';
import { gradients } from '../../lib/graph/autodiff.ts';
import { mul, reduceSum } from '../../lib/graph/ops.ts';
import { maxPool } from '../../lib/graph/nn-ops.ts';
import { assertOutputs, sizeOf, uniformFrom, type Pads, type Pair } from './float64-reference.ts';


interface PoolCase {
  x: [number, number, number, number]; // N, C, H, W
  k: Pair;
  strides: Pair;
  dilations: Pair;
  pads: Pads; // top, left, bottom, right
}

/** y = MaxPool(x) and, for the loss sum(y * dy), dx: each window's dy to its first maximum. */
function referenceMaxPool(c: PoolCase, x: Float32Array, dy: Float32Array) {
  const [n, ch, h, wd] = c.x;
  const [kh, kw] = c.k;
  const [sh, sw] = c.strides;
  const [dh, dw] = c.dilations;
  const [top, left, bottom, right] = c.pads;
  const outH = Math.floor((h + top + bottom - dh * (kh - 1) - 1) / sh) + 1;
  const outW = Math.floor((wd + left + right - dw * (kw - 1) - 1) / sw) + 1;
  const y = new Float64Array(n * ch * outH * outW);
  const dx = new Float64Array(x.length);
  for (let plane = 0; plane < n * ch; plane++) {
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++) {
        let best = -Infinity;
        let at = -1;
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh - top + ky * dh;
          if (iy < 0 || iy >= h) continue; // padding is never the maximum
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * sw - left + kx * dw;
            if (ix < 0 || ix >= wd) continue;
            const xi = (plane * h + iy) * wd + ix;
            if (x[xi]! > best) [best, at] = [x[xi]!, xi]; // strictly greater: the first maximum keeps the gradient
          }
        }
        const yi = (plane * outH + oy) * outW + ox;
        assert.ok(at >= 0, `window (${oy}, ${ox}) holds only padding`);
        y[yi] = best;
        dx[at] += dy[yi]!;
      }
    }
  }
  return { y, dx, outH, outW };
}

const describe = (c: PoolCase): string => `x [${c.x}] k [${c.k}] s [${c.strides}] d [${c.dilations}] pads [${c.pads}]`;

async function checkCase(c: PoolCase, seed: number, levels: number): Promise<void> {
  const uniform = uniformFrom(seed);
  const g = new Graph();
  const x = g.input('x', c.x);
  const y = maxPool(x, { kernel: c.k, strides: c.strides, dilations: c.dilations, pads: c.pads });
  const dyIn = g.input('dy', y.shape);
  const [gx] = gradients(reduceSum(mul(y, dyIn)), [x]);
  g.output('y', y);
  g.output('dx', gx!);
  // `levels` values in [-1, 1] (ties in most windows; one level: all -0.5), or continuous values when 0; inputs below
  // zero show a padding that wins (it would give 0 or the lowest float)
  const level = (v: number) => (levels === 1 ? -0.5 : (Math.round(((v + 1) / 2) * (levels - 1)) / (levels - 1)) * 2 - 1);
  const xs = uniform(sizeOf(c.x)).map((v) => (levels ? level(v) : v));
  const yDims = y.shape as number[];
  const dys = uniform(sizeOf(yDims));
  const ref = referenceMaxPool(c, xs, dys);
  assert.deepEqual(yDims.slice(2), [ref.outH, ref.outW], `${describe(c)}: output size`);
  await assertOutputs(g, { x: { data: xs, dims: c.x }, dy: { data: dys, dims: yDims } }, { y: ref.y, dx: ref.dx }, `${describe(c)} (${levels || 'continuous'} levels)`);
}

test('MaxPool gradient goes to the first maximum of each window (ties, as PyTorch), equal to the float64 reference', async () => {
  // all inputs equal: every window's gradient to its first in-range element (the top-left one, after the padding)
  await checkCase({ x: [1, 2, 5, 6], k: [3, 3], strides: [1, 1], dilations: [1, 1], pads: [1, 1, 1, 1] }, 1, 1);
  // two levels: ties in almost every window, overlapping windows (stride below the kernel)
  await checkCase({ x: [2, 3, 7, 8], k: [3, 2], strides: [2, 1], dilations: [1, 1], pads: [1, 0, 1, 1] }, 2, 2);
});

// Pads below the kernel (ONNX's bound), asymmetric; sizes where the last window does not fit.
const PADS: Pads[] = [[0, 0, 0, 0], [1, 0, 0, 1], [0, 1, 1, 0], [1, 1, 1, 1], [2, 0, 1, 2]];
const SIZES: Pair[] = [[7, 8], [8, 7], [9, 6], [6, 9]];

test('MaxPool gradient equals the float64 reference over kernels, strides, dilations and pads, with ties and without', async () => {
  let i = 0;
  for (const k of [2, 3]) {
    for (const s of [1, 2, 3]) {
      for (const d of [1, 2]) {
        for (const levels of [0, 3]) {
          const pads = PADS[i % PADS.length]!.map((p) => Math.min(p, k - 1)) as Pads;
          const [h, w] = SIZES[i % SIZES.length]!;
          await checkCase({ x: [2, 2, h, w], k: [k, k], strides: [s, s], dilations: [d, d], pads }, 300 + i++, levels);
        }
      }
    }
  }
});

// Each axis its own kernel, stride, dilation (a mix-up of height and width shows here).
test('MaxPool gradient equals the float64 reference with different kernels, strides and dilations per axis', async () => {
  const cases: PoolCase[] = [
    { x: [2, 2, 7, 9], k: [3, 2], strides: [2, 1], dilations: [1, 2], pads: [1, 1, 0, 0] },
    { x: [1, 3, 8, 6], k: [2, 3], strides: [1, 3], dilations: [2, 1], pads: [0, 2, 1, 1] },
    { x: [2, 1, 9, 7], k: [1, 3], strides: [3, 2], dilations: [1, 2], pads: [0, 1, 0, 2] },
  ];
  let i = 0;
  for (const c of cases) for (const levels of [0, 2]) await checkCase(c, 700 + i++, levels);
});
