// Random cases beside corruption-parity.test.ts (fixed shapes and levels): the types and filters rewritten for
// speed in round 7 (color_diffusion, watermark_damage, mean_shift's reused buffers, lineBlur's reused buffer) and round 8
// (gaussian_noise's noise without its array, lens_blur's blur and blend in one pass) and round 17 (sharpness_change's
// convolution and blend in one pass, the cross's arms summed as integers) and round 18 (motion_blur's libvips convolution
// in WebAssembly)
// against the frozen implementation in test/data/reference/, on random sizes (1-300 px, odd and non-square), levels
// and seeds, one after another in one process, so buffers reused across calls carry the previous call's contents.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { corrupt } from '../../lib/data/corruptions.ts';
import { blurBlendRgb, boxBlurRgbBytes, convolveBlendRgb, lineBlurInto } from '../../lib/data/filters.ts';
import { rng } from '../../lib/data/random.ts';
import { corrupt as corruptV1 } from './reference/corruptions-v1.ts';
import { blurRgb as blurRgbV1, boxBlur as boxBlurV1, convolveRgb as convolveRgbV1, lineBlur as lineBlurV1 } from './reference/filters-v1.ts';
import { scene } from './helpers.ts';

function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): string {
  for (let k = 0; k < Math.min(a.length, b.length); k++) if (a[k] !== b[k]) return `element ${k}: ${a[k]} vs ${b[k]}`;
  return `lengths ${a.length} and ${b.length}`;
}

/** A random size: mostly small (fast), some up to 300 px, a few 1-2 px wide or tall. */
function randomSize(r: ReturnType<typeof rng>): [number, number] {
  const side = () => (r.float() < 0.1 ? r.int(1, 2) : r.float() < 0.8 ? r.int(3, 90) : r.int(91, 300));
  return [side(), side()];
}

for (const type of ['color_diffusion', 'watermark_damage', 'mean_shift', 'motion_blur', 'gaussian_noise', 'lens_blur', 'sharpness_change']) {
  test(`${type}: random sizes, levels and seeds give the reference bytes`, async () => {
    const r = rng(0x5eed + type.length);
    for (let c = 0; c < 30; c++) {
      const [w, h] = randomSize(r);
      // Levels anywhere in (0, 1], and the named ones (and above 0.9: color_diffusion's blots) now and then.
      const level = r.float() < 0.3 ? [0.23, 0.45, 0.9, 0.95][r.int(0, 3)] : 0.01 + 0.99 * r.float();
      const seed = r.int(0, 1e6);
      const img = scene(c, w, h);
      const a = await corrupt(img, type, level, seed);
      const b = await corruptV1(img, type, level, seed);
      assert.ok(Buffer.from(a.data).equals(Buffer.from(b.data)), `${type} ${w}x${h} level ${level} seed ${seed}: ${firstDiff(a.data, b.data)}`);
    }
  });
}

test('boxBlurRgbBytes: boxBlur\'s float32 values, radii from 1 to past the image, reused buffers', () => {
  const r = rng(71);
  for (let c = 0; c < 60; c++) {
    const [w, h] = randomSize(r);
    const rx = r.int(1, 45), ry = r.int(1, 45);
    const img = scene(c + 100, w, h);
    const a = boxBlurRgbBytes(img.data, w, h, rx, ry);
    const b = boxBlurV1(img.data, w, h, 3, rx, ry);
    assert.ok(Buffer.from(a.buffer).equals(Buffer.from(b.buffer)), `${w}x${h} radius ${rx}, ${ry}: ${firstDiff(a, b)}`);
  }
});

test('lineBlurInto: the reference lineBlur\'s values rounded to bytes, random lengths and angles, reused buffer', () => {
  const r = rng(72);
  for (let c = 0; c < 60; c++) {
    const [w, h] = randomSize(r);
    const len = 1 + 40 * r.float(), angle = 2 * Math.PI * r.float();
    const img = scene(c + 200, w, h);
    const ref = lineBlurV1(img.data, w, h, len, angle);
    const bytes = new Uint8ClampedArray(w * h * 3);
    bytes.set(ref);
    const out = new Uint8ClampedArray(w * h * 3);
    lineBlurInto(img.data, w, h, len, angle, out);
    assert.ok(Buffer.from(out.buffer).equals(Buffer.from(bytes.buffer)), `${w}x${h} length ${len} angle ${angle}: ${firstDiff(out, bytes)}`);
  }
});

test('lineBlurInto at motion_blur high\'s size: rows whose running sums start at their first read column give the reference bytes', () => {
  // 256x256 and 20-29 px lines (windows of at most 31 px, byte input): lineRows starts each row's running sum where an
  // output first reads the row, exact only because those sums are; steep angles skip the most.
  const r = rng(74);
  for (let c = 0; c < 24; c++) {
    const len = 20 + 9 * r.float(), angle = 2 * Math.PI * r.float();
    const img = scene(c + 300, 256, 256);
    const bytes = new Uint8ClampedArray(256 * 256 * 3);
    bytes.set(lineBlurV1(img.data, 256, 256, len, angle));
    const out = new Uint8ClampedArray(256 * 256 * 3);
    lineBlurInto(img.data, 256, 256, len, angle, out);
    assert.ok(Buffer.from(out.buffer).equals(Buffer.from(bytes.buffer)), `length ${len} angle ${angle}: ${firstDiff(out, bytes)}`);
  }
});

test('lineBlurInto on noise: the reference bytes where a float32 rounding changes one byte in ~10^5', () => {
  // Random bytes put B and the outputs anywhere in their range, so the rare byte that one rounding less or more would
  // change (B kept in double instead of float32: ~1 in 10^5 values) turns up among the ~3M values here; the smooth
  // scenes above show it about once in 24 images.
  const r = rng(76);
  for (let c = 0; c < 64; c++) {
    const w = r.int(96, 160), h = r.int(96, 160);
    const len = 3 + 28 * r.float(), angle = 2 * Math.PI * r.float();
    const data = new Uint8Array(w * h * 3);
    for (let k = 0; k < data.length; k++) data[k] = r.int(0, 255);
    const bytes = new Uint8ClampedArray(w * h * 3);
    bytes.set(lineBlurV1(data, w, h, len, angle));
    const out = new Uint8ClampedArray(w * h * 3);
    lineBlurInto(data, w, h, len, angle, out);
    assert.ok(Buffer.from(out.buffer).equals(Buffer.from(bytes.buffer)), `${w}x${h} length ${len} angle ${angle}: ${firstDiff(out, bytes)}`);
  }
});

test('motion_blur where its line kernel went to libvips (now WebAssembly): the reference bytes over levels, angles and sizes', async () => {
  // Images of at least 128x128 with lines of at most 16 px: libvips' convolution in the reference, convolveExactRgb
  // now (round 18) unless the JS sparse path takes it (few taps on a small image: both arms' JS). Levels low and mid
  // at 256 px and random levels up to 0.55 (line lengths 5 to 16 px) at random sizes; each seed its own angle.
  const r = rng(75);
  for (let c = 0; c < 40; c++) {
    const [w, h] = c < 24 ? [256, 256] : [r.int(128, 400), r.int(128, 300)];
    const level = c < 24 ? [0.23, 0.45][c % 2] : 0.01 + 0.54 * r.float();
    const seed = r.int(0, 1e6);
    const img = scene(c + 400, w, h);
    const a = await corrupt(img, 'motion_blur', level, seed);
    const b = await corruptV1(img, 'motion_blur', level, seed);
    assert.ok(Buffer.from(a.data).equals(Buffer.from(b.data)), `${w}x${h} level ${level} seed ${seed}: ${firstDiff(a.data, b.data)}`);
  }
});

test('blurBlendRgb: addWeighted of the reference blurRgb where it takes the downsampled JS path, random sizes, sigmas and weights', async () => {
  const r = rng(73);
  let fused = 0;
  for (let c = 0; c < 60; c++) {
    const [w, h] = randomSize(r);
    const sigma = c % 4 === 0 ? 0.2 + 4 * r.float() : 4 + 30 * r.float();
    const wa = r.float() * 1.2, wb = r.float() * 1.2;
    const img = scene(c + 300, w, h);
    const out = new Uint8ClampedArray(w * h * 3);
    if (!blurBlendRgb(img, sigma, wa, wb, out)) {
      assert.ok(out.every((v) => v === 0), 'nothing written when it declines');
      continue;
    }
    fused++;
    const blurred = await blurRgbV1(img, sigma);
    const want = new Uint8ClampedArray(w * h * 3);
    for (let k = 0; k < want.length; k++) want[k] = img.data[k] * wa + blurred[k] * wb;
    assert.ok(Buffer.from(out.buffer).equals(Buffer.from(want.buffer)), `${w}x${h} sigma ${sigma} weights ${wa}, ${wb}: ${firstDiff(out, want)}`);
  }
  assert.ok(fused >= 20, `only ${fused} cases took the fused path`);
});

test('sharpness_change at 256x256: the named levels, and levels whose cross sums are not exact (the tap loop) or barely are', async () => {
  // 1e-8: the arm weight's ulp is too fine for 255 x the weights to stay exact, so convolveBlendRgb keeps the tap loop;
  // 1e-6 and up: the arms are summed as integers. 1e-40: the arm weight is a float32 subnormal.
  for (let k = 0; k < 4; k++) {
    const img = scene(k + 400, 256, 256);
    for (const level of [0.23, 0.45, 0.9, 1, 0.37, 1e-6, 1e-8, 1e-40]) {
      const a = await corrupt(img, 'sharpness_change', level, k);
      const b = await corruptV1(img, 'sharpness_change', level, k);
      assert.ok(Buffer.from(a.data).equals(Buffer.from(b.data)), `scene ${k} level ${level}: ${firstDiff(a.data, b.data)}`);
    }
  }
});

test('convolveBlendRgb: addWeighted of the reference convolveRgb where it takes the JS path, random kernels, sizes and weights', async () => {
  const r = rng(75);
  let fused = 0;
  for (let c = 0; c < 60; c++) {
    const [w, h] = randomSize(r);
    // Crosses with equal arms (the integer sums), with one arm different, and random sparse 3x3 / 5x5 kernels.
    const side = c % 5 === 4 ? 5 : 3;
    const kernel = new Float32Array(side * side);
    if (side === 3) {
      const g = c % 7 === 0 ? 1e-9 : 20 * r.float();
      kernel.set([0, -g, 0, -g, 1 + 4 * g, -g, 0, -g, 0]);
      if (c % 3 === 1) kernel[7] = -g * (0.5 + r.float());
      if (c % 6 === 2) kernel[0] = r.float() - 0.5;
    } else for (let k = 0; k < kernel.length; k++) if (r.float() < 0.3) kernel[k] = 4 * r.float() - 2;
    const wa = r.float() * 1.2, wb = r.float() * 1.2;
    const img = scene(c + 500, w, h);
    const out = new Uint8ClampedArray(w * h * 3);
    if (!convolveBlendRgb(img, kernel, side, wa, wb, out)) {
      assert.ok(out.every((v) => v === 0), 'nothing written when it declines');
      continue;
    }
    fused++;
    const conv = await convolveRgbV1(img, kernel, side);
    const want = new Uint8ClampedArray(w * h * 3);
    for (let k = 0; k < want.length; k++) want[k] = img.data[k] * wa + conv[k] * wb;
    assert.ok(Buffer.from(out.buffer).equals(Buffer.from(want.buffer)), `${w}x${h} kernel ${Array.from(kernel)} weights ${wa}, ${wb}: ${firstDiff(out, want)}`);
  }
  assert.ok(fused >= 50, `only ${fused} cases took the fused path`);
});

test('convolveBlendRgb: a cross whose arm products are each lost in the tap order but not in their sum keeps the tap order', async () => {
  // Centre 201 x 0.5 = 100.5; arms 0, 0, 102, 102 x 2^-54: each product is under half an ulp of 100.5, so the tap order
  // (up, left, centre, right, down) stays at 100.5 and rounds to 100 (half to even); the arms summed first would
  // reach 100.5 + 1 ulp and give 101. isExactCross must refuse this kernel (255 x its weights need 78 bits).
  const img = { width: 3, height: 3, data: new Uint8Array(27) };
  img.data[(1 * 3 + 1) * 3] = 201; img.data[(1 * 3 + 2) * 3] = 102; img.data[(2 * 3 + 1) * 3] = 102;
  const wn = 2 ** -54;
  const kernel = Float32Array.from([0, wn, 0, wn, 0.5, wn, 0, wn, 0]);
  const out = new Uint8ClampedArray(27);
  assert.ok(convolveBlendRgb(img, kernel, 3, 0, 1, out));
  const conv = await convolveRgbV1(img, kernel, 3);
  assert.equal(conv[(1 * 3 + 1) * 3], 100);
  assert.ok(Buffer.from(out.buffer).equals(Buffer.from(conv.buffer)), firstDiff(out, conv));
});
