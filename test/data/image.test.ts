import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import zlib from 'node:zlib';
import fc from 'fast-check';
import sharp from 'sharp';
import { decodePngRgb8 } from '../../lib/data/png.ts';
import { decodeImage, encodePng, fromCHWFloat, toCHWFloat, type RgbImage } from '../../lib/data/image.ts';
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

/** An 8-bit RGB PNG of `img` written by hand, row y with PNG filter `filterOf(y)` (every type, edges included). */
function handPng(img: RgbImage, filterOf: (y: number) => number, extra: Array<[string, Uint8Array]> = []): Uint8Array {
  const { width: w, height: h, data } = img;
  const stride = w * 3;
  const raw = new Uint8Array(h * (stride + 1));
  const at = (x: number, y: number) => (x < 0 || y < 0 ? 0 : data[y * stride + x]!);
  for (let y = 0; y < h; y++) {
    const f = filterOf(y);
    raw[y * (stride + 1)] = f;
    for (let i = 0; i < stride; i++) {
      const [v, a, b, c] = [at(i, y), at(i - 3, y), at(i, y - 1), at(i - 3, y - 1)];
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const pred = [0, a, b, (a + b) >> 1, paeth][f]!;
      raw[y * (stride + 1) + 1 + i] = (v - pred) & 255;
    }
  }
  const chunk = (type: string, body: Uint8Array) => {
    const out = Buffer.alloc(12 + body.length);
    out.writeUInt32BE(body.length, 0);
    out.write(type, 4, 'latin1');
    out.set(body, 8);
    out.writeUInt32BE(zlib.crc32(out.subarray(4, 8 + body.length)), 8 + body.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const z = zlib.deflateSync(raw);
  const half = z.length >> 1; // two IDAT chunks
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), ...extra.map(([t, b]) => chunk(t, b)),
    chunk('IDAT', z.subarray(0, half)), chunk('IDAT', z.subarray(half)), chunk('IEND', new Uint8Array(0))]);
}

test('decodeImage: 8-bit RGB PNGs decoded in JavaScript are byte for byte what sharp decodes; anything else goes to sharp', async (t) => {
  const viaSharp = async (b: Uint8Array, size?: number) => {
    let p = sharp(b, { failOn: 'error' }).autoOrient();
    if (size) p = p.resize(size, size, { fit: 'cover', position: 'centre' });
    return new Uint8Array(await p.removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer());
  };
  const noisy = (w: number, h: number, seed: number): RgbImage => {
    const s = scene(seed, w, h);
    for (let i = 0; i < s.data.length; i += 7) s.data[i] = (s.data[i]! * 31 + i) & 255;
    return s;
  };
  for (const [w, h] of [[37, 23], [1, 5], [64, 64]] as const) {
    const img = noisy(w, h, w * h);
    for (const [label, bytes] of [
      ['filters 0-4 by row', handPng(img, (y) => y % 5)],
      ['filters 4-0 by row, text and pHYs chunks', handPng(img, (y) => 4 - (y % 5), [['tEXt', Buffer.from('Comment\0x')], ['pHYs', new Uint8Array(9)]])],
      ['sharp, adaptive filtering', new Uint8Array(await sharp(img.data, { raw: { width: w, height: h, channels: 3 } }).png({ adaptiveFiltering: true }).toBuffer())],
    ] as const) {
      const fast = decodePngRgb8(bytes);
      assert.ok(fast, `${label} ${w}x${h}: decoded in JavaScript`);
      assert.deepEqual(fast.data, img.data, `${label} ${w}x${h}: the pixels`);
      assert.deepEqual(fast.data, await viaSharp(bytes), `${label} ${w}x${h}: as sharp decodes them`);
      if (w === h) assert.deepEqual((await decodeImage(bytes, w)).data, await viaSharp(bytes, w), `${label}: decodeImage at its own size`);
    }
  }
  // left to sharp: interlaced, grey, a colour profile chunk, a bad CRC
  const img = noisy(16, 16, 3);
  const raw = sharp(img.data, { raw: { width: 16, height: 16, channels: 3 } });
  assert.equal(decodePngRgb8(await raw.clone().png({ progressive: true }).toBuffer()), undefined);
  assert.equal(decodePngRgb8(await sharp(img.data.subarray(0, 256), { raw: { width: 16, height: 16, channels: 1 } }).toColourspace('b-w').png().toBuffer()), undefined);
  assert.equal(decodePngRgb8(handPng(img, () => 1, [['gAMA', new Uint8Array(4)]])), undefined);
  const badCrc = handPng(img, () => 1);
  badCrc[badCrc.length - 13]! ^= 1; // the last IDAT's CRC
  assert.equal(decodePngRgb8(badCrc), undefined);
  const dir = tempDir(t);
  writeFileSync(join(dir, 'bad-crc.png'), badCrc);
  await assert.rejects(decodeImage(join(dir, 'bad-crc.png'), 16), 'sharp refuses what the JavaScript decoder leaves to it');
});
