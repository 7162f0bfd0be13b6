// convolveExactRgb (round 18, mb18) stands in for libvips' float convolution (sharp `convolve`) wherever
// isExactConvolution accepts the kernel, so its bytes must be libvips' bytes: compared here with sharp itself on random
// accepted kernels and sizes, images smaller than the kernel (every output an edge) and sums that float32 rounding
// carries up to the next integer. motion_blur's line kernels: corruption-random-parity.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { convolveExactRgb, isExactConvolution } from '../../lib/data/convolve-exact.ts';
import type { RgbImage } from '../../lib/data/image.ts';
import { rng } from '../../lib/data/random.ts';
import { scene } from './helpers.ts';

/** libvips' bytes, as convolveRgb asked sharp for them before round 18. */
async function viaSharp(img: RgbImage, kernel: Float32Array, side: number): Promise<Uint8Array> {
  const { data } = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .convolve({ width: side, height: side, kernel: Array.from(kernel), scale: 1, offset: 0.5 })
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): string {
  for (let k = 0; k < Math.min(a.length, b.length); k++) if (a[k] !== b[k]) return `element ${k}: ${a[k]} vs ${b[k]}`;
  return `lengths ${a.length} and ${b.length}`;
}

/** A random kernel isExactConvolution accepts: `taps` non-zero float32 weights (some at 2^-14) summing to about `total`. */
function randomKernel(r: ReturnType<typeof rng>, side: number, taps: number, total: number): Float32Array {
  const kernel = new Float32Array(side * side);
  for (let t = 0; t < taps; t++) kernel[r.int(0, side * side - 1)] += r.float() < 0.1 ? 0 : r.float();
  let sum = 0;
  for (const v of kernel) sum += v;
  for (let k = 0; k < kernel.length; k++) kernel[k] = kernel[k] === 0 ? 0 : Math.max(2 ** -14, (kernel[k] / sum) * total);
  return kernel;
}

test('convolveExactRgb gives sharp\'s bytes: random accepted kernels and sizes, small images all edge', async () => {
  const r = rng(1818);
  let cases = 0;
  for (let c = 0; c < 60; c++) {
    const side = 2 * r.int(1, 8) + 1;
    const kernel = randomKernel(r, side, r.int(1, 40), c % 4 === 0 ? 255.9 / 255 : 1);
    if (!isExactConvolution(kernel)) continue;
    const small = c % 3 === 0;
    const w = small ? r.int(1, 12) : r.int(13, 300), h = small ? r.int(1, 12) : r.int(13, 200);
    const img = scene(c, w, h);
    const a = convolveExactRgb(img, kernel, side);
    const b = await viaSharp(img, kernel, side);
    assert.ok(Buffer.from(a).equals(Buffer.from(b)), `${w}x${h}, side ${side}: ${firstDiff(a, b)}`);
    cases++;
  }
  assert.ok(cases >= 50, `only ${cases} kernels accepted`);
});

test('convolveExactRgb: sums just below an integer that float32 rounds up truncate to that integer, as in libvips', async () => {
  // Weights 0.5 and 0.5 - 2^-25 (horizontal neighbours): where a + b is even the double sum is (a + b) / 2 - b 2^-25,
  // within half a float32 ulp below the integer (a + b) / 2, so libvips' float32 output is that integer and its cast
  // keeps it; truncating the double instead gives one less.
  const w = 64, h = 48;
  const img = scene(3, w, h);
  const kernel = new Float32Array(9);
  kernel[4] = 0.5; kernel[5] = 0.5 - 2 ** -25; // the float32 below 0.5
  assert.ok(isExactConvolution(kernel));
  const a = convolveExactRgb(img, kernel, 3);
  const b = await viaSharp(img, kernel, 3);
  // Where a = b = v > 0 the sum is v - v 2^-25: libvips gives v (float32 rounding, then the cast), not v - 1.
  let carried = 0;
  for (let y = 0; y < h; y++) for (let x = 0; x < w - 1; x++) for (let c = 0; c < 3; c++) {
    const k = (y * w + x) * 3 + c, v = img.data[k];
    if (v === 0 || img.data[k + 3] !== v) continue;
    assert.equal(b[k], v, `sharp at byte ${k}`);
    carried++;
  }
  assert.ok(carried > 100, `only ${carried} bytes where the rounding matters`);
  assert.ok(Buffer.from(a).equals(Buffer.from(b)), firstDiff(a, b));
});

test('convolveExactRgb at its largest chunk sums: 1024 taps whose low chunks are all but 2^13, on bytes of 255', async () => {
  // The float32 below 2^-11 is (2^26 - 4) 2^-37: chunks 0, 8191, 8188. 1024 of them on 255s sum each chunk to just
  // below 2^31, the module's 32-bit lanes' limit.
  const side = 33, kernel = new Float32Array(side * side);
  const wt = Math.fround(2 ** -11 * (1 - 2 ** -24));
  for (let k = 0; k < 1024; k++) kernel[k] = wt;
  assert.ok(wt < 2 ** -11 && isExactConvolution(kernel));
  for (const img of [{ width: 40, height: 36, data: new Uint8Array(40 * 36 * 3).fill(255) }, scene(9, 40, 36)]) {
    const a = convolveExactRgb(img, kernel, side);
    const b = await viaSharp(img, kernel, side);
    assert.ok(Buffer.from(a).equals(Buffer.from(b)), firstDiff(a, b));
  }
});

test('isExactConvolution accepts weights 0 or >= 2^-14 summing below 256/255, at most 1024 taps, and nothing else', () => {
  const k = (...v: number[]) => Float32Array.from(v);
  assert.equal(isExactConvolution(k(0, 0.5, 0, 0.5, 0, 0, 0, 0, 0)), true);
  assert.equal(isExactConvolution(k(2 ** -14, 0.5)), true);
  assert.equal(isExactConvolution(k(2 ** -15, 0.5)), false, 'a weight below 2^-14');
  assert.equal(isExactConvolution(k(-0.1, 1)), false, 'a negative weight');
  assert.equal(isExactConvolution(k(0.5, 0.5, 256 / 255 - 1)), false, 'a sum of 256/255');
  assert.equal(isExactConvolution(k(Number.NaN)), false, 'NaN');
  assert.equal(isExactConvolution(new Float32Array(1024).fill(2 ** -11)), true, '1024 taps');
  assert.equal(isExactConvolution(new Float32Array(1025).fill(2 ** -11)), false, '1025 taps');
});

test('convolveExactRgb names a kernel or image it cannot take', () => {
  const img = scene(1, 4, 3);
  assert.throws(() => convolveExactRgb(img, new Float32Array(4), 2), /convolveExactRgb: kernel must be side x side with odd side, got 4 for 2/);
  assert.throws(() => convolveExactRgb(img, Float32Array.from([0, 0, 0, 0, 2, 0, 0, 0, 0]), 3), /convolveExactRgb: the kernel needs weights 0 or >= 2\^-14 summing to less than 256\/255, at most 1024 of them non-zero/);
  assert.throws(() => convolveExactRgb({ ...img, data: img.data.subarray(1) }, new Float32Array(9), 3), /image data has 35 bytes, expected 36 for 4x3/);
});
