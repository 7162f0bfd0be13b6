import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blurRgb, boxBlur, convolveRgb, downsampleArea, gaussianBlur, gaussianKernel1D, convolveSeparable, lineBlur, lineBlurInto, reflect101, SHARP_THRESHOLD } from '../../lib/data/filters.ts';
import { scene } from './helpers.ts';

test('reflect101 mirrors without repeating the edge', () => {
  assert.deepEqual([-3, -2, -1, 0, 1, 2, 3, 4, 5, 6].map((i) => reflect101(i, 4)), [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
  assert.equal(reflect101(5, 1), 0);
});

test('boxBlur equals the direct mean over the window', () => {
  const img = scene(2, 13, 9);
  const r = 2;
  const out = boxBlur(img.data, 13, 9, 3, r, r);
  const ones = new Float32Array(2 * r + 1).fill(1 / (2 * r + 1));
  const ref = convolveSeparable(img.data, 13, 9, 3, ones, ones);
  for (let k = 0; k < out.length; k++) assert.ok(Math.abs(out[k] - ref[k]) < 1e-3);
});

test('gaussianBlur: the downsampled path stays close to the direct convolution', () => {
  const img = scene(3, 96);
  for (const sigma of [4.6, 9]) {
    const k = gaussianKernel1D(2 * Math.ceil(3 * sigma) + 1, sigma);
    const ref = convolveSeparable(img.data, 96, 96, 3, k, k);
    const out = gaussianBlur(img.data, 96, 96, 3, sigma);
    let mean = 0;
    for (let i = 0; i < ref.length; i++) mean += Math.abs(ref[i] - out[i]);
    assert.ok(mean / ref.length < 0.6, `sigma ${sigma}: mean abs difference ${(mean / ref.length).toFixed(3)}`);
  }
});

test('blurRgb and convolveRgb: the JS and libvips paths agree', async () => {
  // 160x160 with a large sigma goes to sharp; the same image cropped small stays in JS. Compare both with
  // the direct JS convolution of the whole image.
  const img = scene(4, 160);
  const sigma = 3;
  assert.ok(160 * 160 * 6 * 19 > SHARP_THRESHOLD);
  const viaSharp = await blurRgb(img, sigma);
  const k = gaussianKernel1D(19, sigma);
  const ref = convolveSeparable(img.data, 160, 160, 3, k, k);
  let mean = 0;
  for (let y = 10; y < 150; y++) for (let x = 10; x < 150; x++) for (let c = 0; c < 3; c++) {
    const i = (y * 160 + x) * 3 + c;
    mean += Math.abs(viaSharp[i] - ref[i]);
  }
  assert.ok(mean / (140 * 140 * 3) < 1, `libvips vs JS gaussian: mean abs difference ${(mean / (140 * 140 * 3)).toFixed(3)}`);
  // A 3x3 sharpening kernel: JS on a small image, libvips on a large one; both against a direct evaluation.
  const sharpen = Float32Array.from([0, -2, 0, -2, 9, -2, 0, -2, 0]);
  for (const [w, h] of [[40, 30], [512, 256]]) {
    const img2 = scene(5, w, h);
    const out = await convolveRgb(img2, sharpen, 3);
    let worst = 0;
    for (let y = 1; y < h - 1; y += 3) for (let x = 1; x < w - 1; x += 3) for (let c = 0; c < 3; c++) {
      const at = (yy: number, xx: number): number => img2.data[(yy * w + xx) * 3 + c];
      const v = 9 * at(y, x) - 2 * (at(y - 1, x) + at(y + 1, x) + at(y, x - 1) + at(y, x + 1));
      worst = Math.max(worst, Math.abs(Math.min(255, Math.max(0, Math.round(v))) - out[(y * w + x) * 3 + c]));
    }
    assert.ok(worst <= 1, `${w}x${h}: convolution differs from the direct sum by ${worst}`);
  }
});

test('lineBlur: an impulse becomes a centred segment of the asked length and angle, mass kept', () => {
  const W = 41, H = 41;
  for (const [len, angle] of [[9, 0.3], [9, 2.0], [12.5, -0.7], [15, 1.2]]) {
    const d = new Float32Array(W * H * 3);
    d[(20 * W + 20) * 3] = 1000;
    const o = lineBlur(d, W, H, len, angle);
    let s = 0, sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
      const v = o[(y * W + x) * 3];
      s += v; sx += v * (x - 20); sy += v * (y - 20); sxx += v * (x - 20) ** 2; syy += v * (y - 20) ** 2; sxy += v * (x - 20) * (y - 20);
    }
    assert.ok(Math.abs(s - 1000) < 1e-2, `mass ${s}`);
    assert.ok(Math.abs(sx / s) < 1e-3 && Math.abs(sy / s) < 1e-3, 'centred');
    const cxx = sxx / s, cyy = syy / s, cxy = sxy / s;
    const axis = 0.5 * Math.atan2(2 * cxy, cxx - cyy);
    const expected = ((((angle % Math.PI) + 1.5 * Math.PI) % Math.PI) - Math.PI / 2);
    assert.ok(Math.abs(axis - expected) < 0.06, `axis ${axis} vs ${expected}`);
    const major = Math.sqrt(12 * ((cxx + cyy) / 2 + Math.sqrt(((cxx - cyy) / 2) ** 2 + cxy ** 2)));
    assert.ok(Math.abs(major - len) < 1, `length ${major} vs ${len}`);
  }
});

test('downsampleArea: bytes (integer block sums) give the same float32 values as the same bytes as floats', () => {
  for (const [w, h, f] of [[13, 9, 2], [17, 11, 4], [8, 8, 3], [5, 3, 7]]) {
    const img = scene(f, w, h);
    const a = downsampleArea(img.data, w, h, 3, f), b = downsampleArea(new Float32Array(img.data), w, h, 3, f);
    assert.deepEqual([a.width, a.height], [b.width, b.height]);
    assert.ok(Buffer.from(a.data.buffer).equals(Buffer.from(b.data.buffer)), `${w}x${h} f ${f}`);
  }
});

test('lineBlurInto: bytes are lineBlur\'s float32 values rounded, steep and shallow lines, byte or float input', () => {
  const img = scene(4, 23, 17);
  for (const angle of [0.3, 1.2, Math.PI / 4, -2.0]) {
    const f = lineBlur(img.data, 23, 17, 9.5, angle);
    assert.ok(Buffer.from(f.buffer).equals(Buffer.from(lineBlur(new Float32Array(img.data), 23, 17, 9.5, angle).buffer)));
    const bytes = new Uint8ClampedArray(f.length);
    lineBlurInto(img.data, 23, 17, 9.5, angle, bytes);
    const ref = new Uint8ClampedArray(f.length);
    ref.set(f);
    assert.deepEqual(bytes, ref, `angle ${angle}`);
  }
});
