import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { clamp01, clamp01Into, decodeImage, encodePng, fromCHWFloat, toCHWFloat, type RgbImage } from '../../lib/data/image.ts';
import { scene, tempDir, writeFixture } from './helpers.ts';

test('toCHWFloat / fromCHWFloat: layout [3,H,W], exact round trip', () => {
  const img: RgbImage = { width: 2, height: 1, data: Uint8Array.from([10, 20, 30, 40, 50, 60]) };
  const f = toCHWFloat(img);
  assert.deepEqual(Array.from(f, (v) => Math.round(v * 255)), [10, 40, 20, 50, 30, 60]);
  fc.assert(fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), fc.integer(), (w, h, seed) => {
    const s = scene(seed >>> 0, w, h);
    assert.deepEqual(fromCHWFloat(toCHWFloat(s), w, h), s);
  }), { numRuns: 30 });
});

test('fromCHWFloat clamps and rounds; rejects a wrong length', () => {
  // planes R = [-0.5, 1.7], G = [0.5, NaN], B = [0.1, 0.2]
  const out = fromCHWFloat(Float32Array.from([-0.5, 1.7, 0.5, NaN, 0.1, 0.2]), 2, 1);
  assert.deepEqual(Array.from(out.data), [0, 128, 26, 255, 0, 51]);
  assert.throws(() => fromCHWFloat(new Float32Array(5), 2, 1), /expected 6 values/);
});

test('decodeImage: PNG, JPEG, WebP, grey, alpha, 16-bit all come back as 8-bit RGB', async (t) => {
  const dir = tempDir(t);
  const src = scene(3, 37, 23);
  const cases = [
    ['a.png', {}], ['b.jpg', {}], ['c.webp', {}], ['d.png', { grey: true }], ['e.png', { alpha: true }],
    ['f.png', { sixteen: true }], ['g.jpeg', { grey: true }],
  ] as const;
  for (const [name, opts] of cases) {
    const path = await writeFixture(dir, name, src, opts);
    const img = await decodeImage(path);
    assert.equal(img.width, 37, name);
    assert.equal(img.height, 23, name);
    assert.equal(img.data.length, 37 * 23 * 3, name);
    if (name === 'a.png' || name === 'c.webp' || name === 'e.png' || name === 'f.png') {
      assert.deepEqual(img.data, src.data, `${name} is lossless`); // alpha dropped, colour kept
    }
    if ('grey' in opts) {
      for (let p = 0; p < 37 * 23; p++) assert.ok(img.data[p * 3] === img.data[p * 3 + 1] && img.data[p * 3 + 1] === img.data[p * 3 + 2]);
    }
    const sq = await decodeImage(readFileSync(path), 16); // from bytes, resized and centre-cropped
    assert.equal(sq.width, 16);
    assert.equal(sq.height, 16);
    assert.equal(sq.data.length, 16 * 16 * 3);
  }
});

test('decodeImage: resize keeps the shorter side, crops where asked', async (t) => {
  const dir = tempDir(t);
  // Left half black, right half white, 40x20: a 20x20 crop at the left is black, at the right white.
  const src: RgbImage = { width: 40, height: 20, data: new Uint8Array(40 * 20 * 3) };
  for (let y = 0; y < 20; y++) for (let x = 20; x < 40; x++) src.data.fill(255, (y * 40 + x) * 3, (y * 40 + x) * 3 + 3);
  const path = await writeFixture(dir, 'half.png', src);
  const left = await decodeImage(path, { size: 10, cropAt: { x: 0, y: 0.5 } });
  const right = await decodeImage(path, { size: 10, cropAt: { x: 1, y: 0.5 } });
  const mean = (img: RgbImage): number => img.data.reduce((a, v) => a + v, 0) / img.data.length;
  assert.equal(left.width, 10);
  assert.ok(mean(left) < 40, `left crop mean ${mean(left)}`);
  assert.ok(mean(right) > 215, `right crop mean ${mean(right)}`);
  const centre = await decodeImage(path, 10);
  assert.ok(Math.abs(mean(centre) - 127.5) < 20, `centre crop mean ${mean(centre)}`);
});

test('decodeImage throws on truncated and non-image input', async (t) => {
  const dir = tempDir(t);
  const good = await writeFixture(dir, 'ok.png', scene(1, 32));
  const bytes = readFileSync(good);
  const cut = join(dir, 'cut.png');
  writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
  await assert.rejects(decodeImage(cut));
  const junk = join(dir, 'junk.jpg');
  writeFileSync(junk, 'not an image');
  await assert.rejects(decodeImage(junk));
  await assert.rejects(decodeImage(join(dir, 'missing.png')));
});

test('encodePng round-trips', async () => {
  const img = scene(9, 31, 17);
  assert.deepEqual(await decodeImage(await encodePng(img)), img);
});

test('clamp01 / clamp01Into: the values Math.min(Math.max(v, 0), 1) gives, NaN kept, written at the offset', () => {
  const x = new Float32Array([-1, -0, 0, 0.25, 1, 1.5, Infinity, -Infinity, NaN, 0.999]);
  const reference = Array.from(x, (v) => (Number.isNaN(v) ? NaN : Math.min(Math.max(v, 0), 1)));
  assert.deepEqual(Array.from(clamp01(x)).map((v) => (Object.is(v, -0) ? 0 : v)), reference);
  const out = new Float32Array(14).fill(7);
  clamp01Into(x, out, 2);
  assert.deepEqual(Array.from(out.subarray(2, 12)), Array.from(clamp01(x)));
  assert.deepEqual([...out.subarray(0, 2), ...out.subarray(12)], [7, 7, 7, 7]);
  assert.throws(() => clamp01Into(x, out, 5), /10 values at 5 do not fit in 14/);
});
