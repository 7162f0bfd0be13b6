// Conv's forward and its input, weight and bias gradients (lib/graph/conv-gradients.ts, run in onnxruntime) against an
// exact float64 reference: direct loops over the ONNX Conv definition (pads begin/end per axis, strides, dilations,
// groups). Finite differences in float32 (test/graph/ops.test.ts) cannot tell a small indexing slip from their own
// noise; this reference can. The sweep covers kernels 1-3, strides 1-3, dilations 1-3, groups 1 and 3, asymmetric
// pads (some beyond the dilated kernel), odd and even sizes where the last stride window does not fit.
import { test } from 'node:test';
import { conv, convOutSize } from '../../lib/graph/ops.ts';
import { checkLayerGradients, type LayerReference, type Pads, type Pair } from './float64-reference.ts';

interface ConvCase {
  x: [number, number, number, number]; // N, C, H, W
  cout: number;
  k: Pair;
  strides: Pair;
  dilations: Pair;
  group: number;
  pads: Pads; // top, left, bottom, right
}

/** y = Conv(x, w, b) and, for the loss sum(y * dy), its gradients, by direct loops in float64. */
function referenceConv(c: ConvCase, x: Float32Array, w: Float32Array, b: Float32Array, dy: Float32Array): LayerReference {
  const [n, cin, h, wd] = c.x;
  const [kh, kw] = c.k;
  const [sh, sw] = c.strides;
  const [dh, dw] = c.dilations;
  const [top, left] = c.pads;
  const outH = convOutSize(h, kh, sh, dh, c.pads[0], c.pads[2]);
  const outW = convOutSize(wd, kw, sw, dw, c.pads[1], c.pads[3]);
  const cinG = cin / c.group;
  const coutG = c.cout / c.group;
  const y = new Float64Array(n * c.cout * outH * outW);
  const dx = new Float64Array(x.length);
  const dW = new Float64Array(w.length);
  const db = new Float64Array(c.cout);
  for (let ni = 0; ni < n; ni++) {
    for (let o = 0; o < c.cout; o++) {
      const g = Math.floor(o / coutG);
      for (let oy = 0; oy < outH; oy++) {
        for (let ox = 0; ox < outW; ox++) {
          const yi = ((ni * c.cout + o) * outH + oy) * outW + ox;
          const gy = dy[yi]!;
          let s = b[o]!;
          db[o] += gy;
          for (let ci = 0; ci < cinG; ci++) {
            const xc = g * cinG + ci;
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * sh - top + ky * dh;
              if (iy < 0 || iy >= h) continue; // padding: zero input, no gradient
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * sw - left + kx * dw;
                if (ix < 0 || ix >= wd) continue;
                const xi = ((ni * cin + xc) * h + iy) * wd + ix;
                const wi = ((o * cinG + ci) * kh + ky) * kw + kx;
                s += x[xi]! * w[wi]!;
                dx[xi] += gy * w[wi]!;
                dW[wi] += gy * x[xi]!;
              }
            }
          }
          y[yi] = s;
        }
      }
    }
  }
  return { y, dx, dw: dW, db, outH, outW };
}

const describe = (c: ConvCase): string =>
  `x [${c.x}] cout ${c.cout} k [${c.k}] s [${c.strides}] d [${c.dilations}] g ${c.group} pads [${c.pads}]`;

async function checkCase(c: ConvCase, seed: number): Promise<void> {
  await checkLayerGradients({
    x: c.x, w: [c.cout, c.x[1] / c.group, c.k[0], c.k[1]], cout: c.cout, seed, label: describe(c),
    op: (x, w, b) => conv(x, w, b, { strides: c.strides, dilations: c.dilations, group: c.group, pads: c.pads }),
    reference: (x, w, b, dy) => referenceConv(c, x, w, b, dy),
  });
}

test('Conv gradients of the reviewer case (k2 s2 d[3,2] g3 pads [0,2,1,0]) equal the float64 reference', async () => {
  await checkCase({ x: [2, 3, 9, 10], cout: 6, k: [2, 2], strides: [2, 2], dilations: [3, 2], group: 3, pads: [0, 2, 1, 0] }, 1);
});

// Pads: none, asymmetric, beyond the dilated kernel on one side or several (those rows of dY only saw padding).
const PADS: Pads[] = [[0, 0, 0, 0], [0, 2, 1, 0], [1, 0, 0, 3], [2, 1, 3, 0], [4, 0, 0, 5], [3, 3, 3, 3], [0, 1, 7, 2]];
// Odd and even sizes, cycled; with strides 2 and 3 most leave a last window that does not fit (the rows it misses get no gradient).
const SIZES: Pair[] = [[9, 10], [8, 7], [11, 12], [10, 9]];
const channels = (group: number) => ({ cin: group === 3 ? 6 : 2, cout: group === 3 ? 6 : 3 });

// The same kernel, stride and dilation on both axes: every pad pattern meets every combination, the stride-1 ungrouped
// cases (their own input and weight gradient paths) included.
test('Conv gradients equal the float64 reference over kernels, strides, dilations, groups and pads', async () => {
  let i = 0;
  for (const k of [1, 2, 3]) {
    for (const s of [1, 2, 3]) {
      for (const d of [1, 2, 3]) {
        for (const group of [1, 3]) {
          for (const pads of PADS) {
            const { cin, cout } = channels(group);
            const [h, w] = SIZES[i % SIZES.length]!;
            await checkCase({ x: [2, cin, h, w], cout, k: [k, k], strides: [s, s], dilations: [d, d], group, pads }, 100 + i++);
          }
        }
      }
    }
  }
});

// Each axis its own kernel, stride and dilation (a mix-up of height and width shows here).
test('Conv gradients equal the float64 reference with different kernels, strides and dilations per axis', async () => {
  const next = (v: number): number => (v % 3) + 1;
  let i = 0;
  for (const k of [1, 2, 3]) {
    for (const s of [1, 2, 3]) {
      for (const d of [1, 2, 3]) {
        for (const group of [1, 3]) {
          const { cin, cout } = channels(group);
          const [h, w] = SIZES[i % SIZES.length]!;
          const c: ConvCase = { x: [2, cin, h, w], cout, k: [k, next(k)], strides: i % 2 ? [s, next(s)] : [s, s], dilations: [next(d), d], group, pads: PADS[i % PADS.length]! };
          await checkCase(c, 1000 + i++);
        }
      }
    }
  }
});
