// ConvTranspose's forward and its input, weight and bias gradients (convTransposeRule, lib/graph/conv-gradients.ts,
// run in onnxruntime) against an exact float64 reference: direct loops over the ONNX ConvTranspose definition (each
// input pixel scatters its kernel to (i * stride - pad_begin + k * dilation); output padding adds rows and columns at
// the end). Finite differences in float32 (test/graph/ops.test.ts) cannot tell a small indexing slip from their own
// noise; this reference can. The sweep covers kernels 1-3, strides 1-3, dilations 1-2, groups 1 and 2, asymmetric
// pads and every output padding below the stride (onnxruntime refuses output padding >= stride).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convTranspose } from '../../lib/graph/ops.ts';
import { checkLayerGradients, type LayerReference, type Pads, type Pair } from './float64-reference.ts';


interface ConvTransposeCase {
  x: [number, number, number, number]; // N, Cin, H, W
  cout: number;
  k: Pair;
  strides: Pair;
  dilations: Pair;
  group: number;
  pads: Pads; // top, left, bottom, right
  outputPadding: Pair;
}

/** y = ConvTranspose(x, w, b) and, for the loss sum(y * dy), its gradients, by direct loops in float64. */
function referenceConvTranspose(c: ConvTransposeCase, x: Float32Array, w: Float32Array, b: Float32Array, dy: Float32Array): LayerReference {
  const [n, cin, h, wd] = c.x;
  const [kh, kw] = c.k;
  const [sh, sw] = c.strides;
  const [dh, dw] = c.dilations;
  const [top, left, bottom, right] = c.pads;
  const outH = sh * (h - 1) + c.outputPadding[0] + (kh - 1) * dh + 1 - top - bottom;
  const outW = sw * (wd - 1) + c.outputPadding[1] + (kw - 1) * dw + 1 - left - right;
  const cinG = cin / c.group;
  const coutG = c.cout / c.group;
  const y = new Float64Array(n * c.cout * outH * outW);
  const dx = new Float64Array(x.length);
  const dW = new Float64Array(w.length);
  const db = new Float64Array(c.cout);
  for (let ni = 0; ni < n; ni++) {
    for (let o = 0; o < c.cout; o++) {
      for (let p = 0; p < outH * outW; p++) {
        const yi = (ni * c.cout + o) * outH * outW + p;
        y[yi] = b[o]!;
        db[o] += dy[yi]!;
      }
    }
    for (let xc = 0; xc < cin; xc++) {
      const g = Math.floor(xc / cinG);
      for (let iy = 0; iy < h; iy++) {
        for (let ix = 0; ix < wd; ix++) {
          const xi = ((ni * cin + xc) * h + iy) * wd + ix;
          for (let oc = 0; oc < coutG; oc++) {
            const o = g * coutG + oc;
            for (let ky = 0; ky < kh; ky++) {
              const oy = iy * sh - top + ky * dh;
              if (oy < 0 || oy >= outH) continue; // cropped by the pads
              for (let kx = 0; kx < kw; kx++) {
                const ox = ix * sw - left + kx * dw;
                if (ox < 0 || ox >= outW) continue;
                const yi = ((ni * c.cout + o) * outH + oy) * outW + ox;
                const wi = ((xc * coutG + oc) * kh + ky) * kw + kx;
                y[yi] += x[xi]! * w[wi]!;
                dx[xi] += dy[yi]! * w[wi]!;
                dW[wi] += dy[yi]! * x[xi]!;
              }
            }
          }
        }
      }
    }
  }
  return { y, dx, dw: dW, db, outH, outW };
}

const describe = (c: ConvTransposeCase): string =>
  `x [${c.x}] cout ${c.cout} k [${c.k}] s [${c.strides}] d [${c.dilations}] g ${c.group} pads [${c.pads}] outputPadding [${c.outputPadding}]`;

async function checkCase(c: ConvTransposeCase, seed: number): Promise<void> {
  await checkLayerGradients({
    x: c.x, w: [c.x[1], c.cout / c.group, c.k[0], c.k[1]], cout: c.cout, seed, label: describe(c),
    op: (x, w, b) => convTranspose(x, w, b, { strides: c.strides, dilations: c.dilations, group: c.group, pads: c.pads, outputPadding: c.outputPadding }),
    reference: (x, w, b, dy) => referenceConvTranspose(c, x, w, b, dy),
  });
}

// Pads: none, asymmetric, larger than the stride (whole input rows scatter only into cropped output rows).
const PADS: Pads[] = [[0, 0, 0, 0], [0, 2, 1, 0], [1, 0, 0, 2], [2, 1, 2, 0], [1, 1, 1, 1]];
const SIZES: Pair[] = [[5, 6], [6, 5], [7, 4], [4, 7]];
const channels = (group: number) => ({ cin: group === 2 ? 4 : 2, cout: group === 2 ? 6 : 3 });

test('ConvTranspose gradients equal the float64 reference over kernels, strides, dilations, groups, pads and output padding', async () => {
  let i = 0;
  let cases = 0;
  for (const k of [1, 2, 3]) {
    for (const s of [1, 2, 3]) {
      for (const d of [1, 2]) {
        for (const group of [1, 2]) {
          for (let op = 0; op < s; op++) {
            const { cin, cout } = channels(group);
            const [h, w] = SIZES[i % SIZES.length]!;
            const pads = PADS[i % PADS.length]!;
            const outH = s * (h - 1) + op + (k - 1) * d + 1 - pads[0] - pads[2];
            const outW = s * (w - 1) + op + (k - 1) * d + 1 - pads[1] - pads[3];
            i++;
            if (outH < 1 || outW < 1) continue; // pads that leave no output
            await checkCase({ x: [2, cin, h, w], cout, k: [k, k], strides: [s, s], dilations: [d, d], group, pads, outputPadding: [op, op] }, 200 + i);
            cases++;
          }
        }
      }
    }
  }
  assert.ok(cases > 60, `${cases} cases run`);
});

// Each axis its own kernel, stride, dilation and output padding (a mix-up of height and width shows here).
test('ConvTranspose gradients equal the float64 reference with different kernels, strides, dilations and output padding per axis', async () => {
  const cases: ConvTransposeCase[] = [
    { x: [2, 2, 5, 6], cout: 3, k: [3, 2], strides: [2, 3], dilations: [1, 2], group: 1, pads: [1, 0, 0, 2], outputPadding: [1, 2] },
    { x: [1, 4, 4, 7], cout: 6, k: [1, 3], strides: [3, 1], dilations: [2, 1], group: 2, pads: [0, 1, 2, 1], outputPadding: [2, 0] },
    { x: [2, 4, 6, 5], cout: 2, k: [2, 3], strides: [1, 2], dilations: [2, 2], group: 2, pads: [2, 1, 1, 0], outputPadding: [0, 1] },
    { x: [2, 3, 7, 4], cout: 3, k: [3, 1], strides: [2, 2], dilations: [1, 1], group: 3, pads: [0, 0, 1, 0], outputPadding: [0, 1] },
  ];
  let i = 0;
  for (const c of cases) await checkCase(c, 900 + i++);
});
