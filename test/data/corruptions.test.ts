import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CORRUPTION_TYPES, FAMILIES, FAMILY_NAMES, LEVELS, corrupt, corruptionMixSchema, describeCorruptions, familyOf,
  parseLevel, sampleCorruption, typeWeights, type CorruptionType,
} from '../../lib/data/corruptions.ts';
import { cloneImage } from '../../lib/data/image.ts';
import { sameBytes, scene, ssimOf } from './helpers.ts';

const LEVEL_LIST = [LEVELS.low, LEVELS.mid, LEVELS.high];

test('16 types in the 4 families of the Robust-R1 pipeline', () => {
  assert.equal(CORRUPTION_TYPES.length, 16);
  assert.equal(new Set(CORRUPTION_TYPES).size, 16);
  assert.deepEqual([...FAMILY_NAMES], ['capture', 'transmission', 'environment', 'post_processing']);
  assert.deepEqual([...FAMILIES.capture], ['lens_blur', 'lens_flare', 'motion_blur', 'dirty_lens', 'hsv_saturation']);
  assert.deepEqual([...FAMILIES.transmission], ['jpeg_compression', 'block_exchange', 'mean_shift', 'scan_lines']);
  assert.deepEqual([...FAMILIES.environment], ['dark_illumination', 'atmospheric_turbulence', 'gaussian_noise', 'color_diffusion']);
  assert.deepEqual([...FAMILIES.post_processing], ['sharpness_change', 'graffiti', 'watermark_damage']);
  assert.deepEqual(LEVELS, { low: 0.23, mid: 0.45, high: 0.9 });
  assert.equal(familyOf('graffiti'), 'post_processing');
  const d = describeCorruptions();
  assert.deepEqual(JSON.parse(JSON.stringify(d)).types, [...CORRUPTION_TYPES]);
});

test('same seed gives identical bytes; the input is left alone; shapes and ranges hold', async () => {
  const img = scene(4, 33, 47); // odd, non-square
  const before = cloneImage(img);
  for (const t of CORRUPTION_TYPES) {
    const a = await corrupt(img, t, 'mid', 11);
    const b = await corrupt(img, t, 'mid', 11);
    assert.ok(sameBytes(a, b), `${t} is deterministic`);
    assert.equal(a.width, 33, t);
    assert.equal(a.height, 47, t);
    assert.ok(a.data instanceof Uint8Array && a.data.length === 33 * 47 * 3, `${t} is 8-bit RGB`);
    assert.ok(a.data !== img.data, `${t} returns a new buffer`);
  }
  assert.ok(sameBytes(img, before));
});

test('the seed matters for the random types', async () => {
  const img = scene(5, 48);
  const seeded: CorruptionType[] = [
    'lens_flare', 'motion_blur', 'dirty_lens', 'block_exchange', 'scan_lines', 'atmospheric_turbulence',
    'gaussian_noise', 'graffiti', 'watermark_damage',
  ];
  for (const t of seeded) {
    const a = await corrupt(img, t, 'high', 1);
    const b = await corrupt(img, t, 'high', 2);
    assert.ok(!sameBytes(a, b), `${t} differs between seeds`);
  }
});

test('every type changes the image at every level, and SSIM to the clean image does not rise with the level', async () => {
  for (const [sceneSeed, size] of [[0, 64], [6, 64], [2, 32]] as const) {
    const img = scene(sceneSeed, size);
    for (const t of CORRUPTION_TYPES) {
      const s: number[] = [];
      for (const level of LEVEL_LIST) {
        const out = await corrupt(img, t, level, 3);
        assert.ok(!sameBytes(out, img), `${t} at ${level} changes scene ${sceneSeed} (${size}px)`);
        s.push(ssimOf(img, out));
      }
      assert.ok(s[0] < 1 && s[1] <= s[0] && s[2] <= s[1], `${t}, scene ${sceneSeed} (${size}px): SSIM ${s.map((v) => v.toFixed(4)).join(' -> ')}`);
    }
  }
});

test('intensity 0 is the identity; any intensity in [0, 1] works', async () => {
  const img = scene(7, 24);
  for (const t of CORRUPTION_TYPES) {
    assert.ok(sameBytes(await corrupt(img, t, 0, 5), img), `${t} at 0`);
    const out = await corrupt(img, t, 1, 5);
    assert.equal(out.data.length, img.data.length);
  }
});

test('levels: names, numbers, strings; out of range and unknown types are clear errors', async () => {
  assert.equal(parseLevel('low'), 0.23);
  assert.equal(parseLevel('0.5'), 0.5);
  assert.equal(parseLevel(1), 1);
  const img = scene(1, 16);
  await assert.rejects(corrupt(img, 'gaussian_noise', 1.2, 0), /intensity must be in \[0, 1\], got 1.2/);
  await assert.rejects(corrupt(img, 'gaussian_noise', -0.1, 0), /intensity must be in \[0, 1\]/);
  await assert.rejects(corrupt(img, 'gaussian_noise', 'extreme', 0), /neither a number in \[0, 1\] nor one of low \(0.23\)/);
  await assert.rejects(corrupt(img, 'gaussian_noise', Number.NaN, 0), /intensity must be in \[0, 1\]/);
  await assert.rejects(corrupt(img, 'fog', 0.5, 0), (e: Error) => {
    assert.match(e.message, /unknown corruption type 'fog'/);
    for (const t of CORRUPTION_TYPES) assert.ok(e.message.includes(t), `lists ${t}`);
    return true;
  });
});

test('known parameterisations: dark = img * (1 - i^2), noise std 75i', async () => {
  const img = scene(2, 32);
  const dark = await corrupt(img, 'dark_illumination', 0.5, 0);
  for (let k = 0; k < img.data.length; k++) assert.equal(dark.data[k], Math.floor(img.data[k] * 0.75));
  const grey = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3).fill(128) };
  const noisy = await corrupt(grey, 'gaussian_noise', 0.2, 9); // std 15: clipping negligible
  let s = 0, s2 = 0;
  for (const v of noisy.data) { s += v - 128; s2 += (v - 128) ** 2; }
  const sd = Math.sqrt(s2 / noisy.data.length - (s / noisy.data.length) ** 2);
  assert.ok(Math.abs(sd - 15) < 0.6, `noise std ${sd}`);
});

test('mix: defaults to all 16 types equally and low/mid/high; sampling is seeded', () => {
  const mix = corruptionMixSchema.parse({});
  assert.deepEqual(mix.levels, ['low', 'mid', 'high']);
  const w = typeWeights(mix);
  for (const p of w) assert.ok(Math.abs(p - 1 / 16) < 1e-12);
  assert.deepEqual(sampleCorruption(mix, 5), sampleCorruption({}, 5));
  const counts = new Map<string, number>();
  const levels = new Set<number>();
  for (let s = 0; s < 3200; s++) {
    const c = sampleCorruption(mix, s);
    counts.set(c.type, (counts.get(c.type) ?? 0) + 1);
    levels.add(c.level);
  }
  assert.equal(counts.size, 16);
  for (const [t, n] of counts) assert.ok(n > 130 && n < 275, `${t} drawn ${n} times of 3200`);
  assert.deepEqual([...levels].sort(), [0.23, 0.45, 0.9]);
});

test('mix: weights per type or per family, level ranges, and bad mixes', () => {
  for (let s = 0; s < 200; s++) {
    const c = sampleCorruption({ types: { gaussian_noise: 1, motion_blur: 3 } }, s);
    assert.ok(c.type === 'gaussian_noise' || c.type === 'motion_blur');
    const f = sampleCorruption({ families: { transmission: 1 } }, s);
    assert.equal(familyOf(f.type), 'transmission');
    const r = sampleCorruption({ levels: { min: 0.3, max: 0.4 } }, s);
    assert.ok(r.level >= 0.3 && r.level <= 0.4);
    assert.ok([0.1, 0.9].includes(sampleCorruption({ levels: [0.1, 'high'] }, s).level));
  }
  // Family weights are shared among the family's types.
  const w = typeWeights(corruptionMixSchema.parse({ families: { capture: 1, post_processing: 1 } }));
  assert.ok(Math.abs(w[CORRUPTION_TYPES.indexOf('lens_blur')] - 0.1) < 1e-12);
  assert.ok(Math.abs(w[CORRUPTION_TYPES.indexOf('graffiti')] - 1 / 6) < 1e-12);
  assert.throws(() => corruptionMixSchema.parse({ types: { fog: 1 } }));
  assert.throws(() => corruptionMixSchema.parse({ types: { graffiti: 0 } }), /weight 0/);
  assert.throws(() => corruptionMixSchema.parse({ levels: [1.5] }));
  assert.throws(() => corruptionMixSchema.parse({ levels: { min: 0.8, max: 0.2 } }));
});

test('large images take the libvips paths: still deterministic, still monotone', async () => {
  const img = scene(3, 160); // above the JS/libvips cut-over for these types
  for (const t of ['lens_blur', 'motion_blur', 'sharpness_change', 'color_diffusion'] as const) {
    const s: number[] = [];
    for (const level of LEVEL_LIST) {
      const a = await corrupt(img, t, level, 4);
      assert.ok(sameBytes(a, await corrupt(img, t, level, 4)), `${t} deterministic at 160 px`);
      s.push(ssimOf(img, a));
    }
    assert.ok(s[0] < 1 && s[1] <= s[0] && s[2] <= s[1], `${t} at 160 px: SSIM ${s.map((v) => v.toFixed(4)).join(' -> ')}`);
  }
});
