// Random cases beside corruption-parity.test.ts (fixed shapes and levels): the types and filters rewritten for
// speed in round 7 (color_diffusion, watermark_damage, mean_shift's reused buffers, lineBlur's reused buffer) and round 8
// (gaussian_noise's noise without its array, lens_blur's blur and blend in one pass)
// against the frozen implementation in test/data/reference/, on random sizes (1-300 px, odd and non-square), levels
// and seeds, one after another in one process, so buffers reused across calls carry the previous call's contents.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { corrupt } from '../../lib/data/corruptions.ts';
import { blurBlendRgb, boxBlurRgbBytes, lineBlurInto } from '../../lib/data/filters.ts';
import { rng } from '../../lib/data/random.ts';
import { corrupt as corruptV1 } from './reference/corruptions-v1.ts';
import { blurRgb as blurRgbV1, boxBlur as boxBlurV1, lineBlur as lineBlurV1 } from './reference/filters-v1.ts';
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

for (const type of ['color_diffusion', 'watermark_damage', 'mean_shift', 'motion_blur', 'gaussian_noise', 'lens_blur']) {
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
