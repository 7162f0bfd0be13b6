// CLIP's preprocessing in the reward graph (clipPreprocess) against an independent model of what OpenAI's clip.py
// and HF's CLIPImageProcessor compute: PIL's bicubic resize of a uint8 image (Pillow's src/libImaging/Resample.c:
// coefficients in float64, normalised to 22-bit fixed point, the horizontal pass first, each pass rounded and
// clipped into a uint8 image), HF's centre crop (floor), CLIP's mean and std. The model was checked against
// Pillow 12.3.0 itself (identical bytes on the images below, round 24); Pillow is no dependency of the project.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../../lib/graph/graph.ts';
import { serialize } from '../../lib/graph/onnx.ts';
import { GraphSession } from '../../lib/graph/runtime.ts';
import { clipPreprocess, CLIP_MEAN, CLIP_STD, CLIP_SIZE } from '../../lib/models/encoder.ts';
import { testRandom } from '../graph/gradcheck.ts';

const PRECISION_BITS = 32 - 8 - 2;

function bicubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc: for each output index, its first input and integer weights. */
function fixedPointCoeffs(inSize: number, outSize: number): Array<{ lo: number; k: number[] }> {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  return Array.from({ length: outSize }, (_, xx) => {
    const center = (xx + 0.5) * scale;
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    const w: number[] = [];
    for (let x = lo; x < hi; x++) w.push(bicubic((x - center + 0.5) / filterScale));
    const total = w.reduce((s, v) => s + v, 0);
    const k = w.map((v) => (total !== 0 ? v / total : v)).map((v) => Math.trunc(v < 0 ? -0.5 + v * 2 ** PRECISION_BITS : 0.5 + v * 2 ** PRECISION_BITS));
    return { lo, k };
  });
}

/** Pillow's clip8: the rounded fixed-point sum, clipped to a byte. */
const clip8 = (ss: number) => Math.min(255, Math.max(0, Math.floor(ss / 2 ** PRECISION_BITS)));

/** One channel [h,w] of bytes resized to [nh,nw] as Pillow's ImagingResampleInner does it for a uint8 image. */
function pilResize(img: Uint8Array, h: number, w: number, nh: number, nw: number): Uint8Array {
  const cols = fixedPointCoeffs(w, nw);
  const rows = fixedPointCoeffs(h, nh);
  const across = new Uint8Array(h * nw); // horizontal pass first
  for (let y = 0; y < h; y++) {
    for (let xx = 0; xx < nw; xx++) {
      const { lo, k } = cols[xx]!;
      let ss = 2 ** (PRECISION_BITS - 1);
      for (let i = 0; i < k.length; i++) ss += img[y * w + lo + i]! * k[i]!;
      across[y * nw + xx] = clip8(ss);
    }
  }
  const out = new Uint8Array(nh * nw);
  for (let yy = 0; yy < nh; yy++) {
    const { lo, k } = rows[yy]!;
    for (let xx = 0; xx < nw; xx++) {
      let ss = 2 ** (PRECISION_BITS - 1);
      for (let i = 0; i < k.length; i++) ss += across[(lo + i) * nw + xx]! * k[i]!;
      out[yy * nw + xx] = clip8(ss);
    }
  }
  return out;
}

/** HF CLIPImageProcessor on [3,h,w] bytes: shorter side to 224 (the longer int(224 * long / short)), crop (floor), scaled to [0,1]. */
function hfClipPixels(img: Uint8Array, h: number, w: number): Float64Array {
  const [nh, nw] = h <= w ? [CLIP_SIZE, Math.trunc((CLIP_SIZE * w) / h)] : [Math.trunc((CLIP_SIZE * h) / w), CLIP_SIZE];
  const top = Math.floor((nh - CLIP_SIZE) / 2);
  const left = Math.floor((nw - CLIP_SIZE) / 2);
  const out = new Float64Array(3 * CLIP_SIZE * CLIP_SIZE);
  for (let c = 0; c < 3; c++) {
    const resized = pilResize(img.subarray(c * h * w, (c + 1) * h * w), h, w, nh, nw);
    for (let i = 0; i < CLIP_SIZE; i++) for (let j = 0; j < CLIP_SIZE; j++) out[(c * CLIP_SIZE + i) * CLIP_SIZE + j] = resized[(top + i) * nw + left + j]! / 255;
  }
  return out;
}

const images: Array<{ name: string; h: number; w: number; pixel: (c: number, y: number, x: number) => number }> = [
  { name: 'step edge', h: 32, w: 32, pixel: (_c, _y, x) => (x < 16 ? 0 : 255) },
  { name: '4-px checkerboard', h: 48, w: 64, pixel: (c, y, x) => ((Math.floor(y / 4) + Math.floor(x / 4) + c) % 2) * 255 },
  // resized to 227x224: an excess of 3 rows, cropped from row 1 as HF does (torchvision's round would take row 2; 113/255 off)
  { name: 'one-pixel lines', h: 75, w: 74, pixel: (c, y, x) => (y % 9 === 0 || x % (7 + c) === 0 ? 255 : 20) },
];

test("clipPreprocess is PIL's uint8 pipeline (each pass clipped, no bicubic overshoot) to within PIL's rounding, on sharp edges", async () => {
  const rand = testRandom(24);
  const cases = [...images, { name: 'noise', h: 300, w: 229, pixel: () => Math.floor(rand() * 256) }];
  for (const { name, h, w, pixel } of cases) {
    const bytes = new Uint8Array(3 * h * w);
    for (let c = 0; c < 3; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) bytes[(c * h + y) * w + x] = pixel(c, y, x);
    const g = new Graph();
    g.output('y', clipPreprocess(g.input('x', [1, 3, h, w])));
    const session = await GraphSession.create(serialize(g));
    const y = (await session.run({ x: { data: Float32Array.from(bytes, (v) => v / 255), dims: [1, 3, h, w] } })).y!.data;
    await session.release();
    const expected = hfClipPixels(bytes, h, w);
    let worst = 0;
    let lo = Infinity;
    let hi = -Infinity;
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < CLIP_SIZE * CLIP_SIZE; i++) {
        const k = c * CLIP_SIZE * CLIP_SIZE + i;
        const pixelValue = y[k]! * CLIP_STD[c]! + CLIP_MEAN[c]!; // back to [0,1] units
        worst = Math.max(worst, Math.abs(pixelValue - expected[k]!));
        lo = Math.min(lo, pixelValue);
        hi = Math.max(hi, pixelValue);
      }
    }
    // PIL rounds each of its two passes to a byte (0.5/255 each, the first amplified by the second's kernel, whose
    // absolute weights sum to at most 1.2): the graph, which does not round, stays within 1.2/255.
    console.log(`# ${name} ${h}x${w}: max |graph - PIL| ${(worst * 255).toFixed(3)}/255, graph range [${lo.toFixed(4)}, ${hi.toFixed(4)}]`);
    assert.ok(worst < 1.2 / 255, `${name} ${h}x${w}: max |graph - PIL| ${(worst * 255).toFixed(3)}/255`);
    assert.ok(lo > -1e-6 && hi < 1 + 1e-6, `${name}: the resized pixels stay in [0,1] as PIL's bytes do, got [${lo}, ${hi}]`);
  }
});
