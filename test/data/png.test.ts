// decodeImage's own PNG path (lib/data/png.ts) against sharp's decode, byte for byte: every pixel that feeds
// training comes through one of the two, so they must agree on every image the fast path accepts, and the fast path
// must step aside (to sharp, with sharp's errors) for everything else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import sharp, { type Sharp } from 'sharp';
import { decodeImage, MAX_INPUT_PIXELS } from '../../lib/data/image.ts';
import { decodePlainPng } from '../../lib/data/png.ts';
import { rng } from '../../lib/data/random.ts';
import { scene, tempDir } from './helpers.ts';

/** decodeImage's sharp path as it was before png.ts (round 8): the reference. */
async function viaSharp(input: Uint8Array, size?: number): Promise<Uint8Array> {
  let p = sharp(input, { failOn: 'error', limitInputPixels: MAX_INPUT_PIXELS }).autoOrient();
  if (size !== undefined) p = p.resize(size, size, { fit: 'cover', position: 'centre' });
  const { data, info } = await p.removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.channels === 3) return new Uint8Array(data);
  assert.equal(info.channels, 1, 'grey is the only other case here');
  return Uint8Array.from({ length: data.length * 3 }, (_, k) => data[Math.floor(k / 3)]); // toRgb's expansion of grey
}

/** Filter types used by the rows of a PNG (counts per type 0..4). */
function filterTypes(png: Uint8Array, width: number, height: number, channels: number): number[] {
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const idat: Uint8Array[] = [];
  for (let p = 8; p < png.length;) {
    const len = dv.getUint32(p);
    if (String.fromCharCode(...png.subarray(p + 4, p + 8)) === 'IDAT') idat.push(png.subarray(p + 8, p + 8 + len));
    p += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const counts = [0, 0, 0, 0, 0];
  for (let y = 0; y < height; y++) counts[raw[y * (width * channels + 1)]]++;
  return counts;
}

/** An image with smooth parts and noisy parts, so libpng's adaptive filtering picks every filter type somewhere. */
function mixed(seed: number, w: number, h: number): Uint8Array {
  const base = scene(seed, w, h).data;
  const r = rng(seed);
  for (let y = 0; y < h; y++) if (y % 3 === 1) for (let k = y * w * 3; k < (y + 1) * w * 3; k++) base[k] = r.int(0, 255);
  return base;
}

test('plain 8-bit RGB and RGBA PNGs: the fast path returns sharp\'s bytes (sizes, alpha, filters, compression, IDAT splits)', async () => {
  const r = rng(15);
  const seen = [0, 0, 0, 0, 0];
  let cases = 0;
  const sizes: Array<[number, number]> = [[1, 1], [1, 9], [9, 1], [2, 3], [17, 5], [33, 31], [64, 64], [256, 256], [300, 7], [5, 300]];
  for (let k = 0; k < 20; k++) sizes.push([r.int(1, 120), r.int(1, 120)]);
  for (const [w, h] of sizes) {
    for (const alpha of [false, true]) {
      const adaptive = r.float() < 0.7, level = r.int(0, 9);
      let s = sharp(mixed(w * 131 + h, w, h), { raw: { width: w, height: h, channels: 3 } });
      if (alpha) s = s.ensureAlpha(r.float());
      const png = new Uint8Array(await s.png({ adaptiveFiltering: adaptive, compressionLevel: level }).toBuffer());
      const fast = decodePlainPng(png);
      assert.ok(fast, `${w}x${h} alpha ${alpha}: the fast path should take a plain PNG`);
      assert.deepEqual(fast.data, await viaSharp(png), `${w}x${h} alpha ${alpha} adaptive ${adaptive} level ${level}`);
      assert.equal(fast.data.byteOffset, 0, 'its own buffer (never a slice of Node\'s shared Buffer pool)');
      assert.equal(fast.width, w);
      assert.equal(fast.height, h);
      // decodeImage at the image's own size (square) takes it too; at another size sharp resizes as before.
      if (w === h) assert.deepEqual((await decodeImage(png, w)).data, await viaSharp(png, w));
      const other = Math.max(1, Math.min(w, h) - 1);
      assert.equal(decodePlainPng(png, other === w && w === h ? w + 1 : other), undefined);
      assert.deepEqual((await decodeImage(png, other)).data, await viaSharp(png, other));
      filterTypes(png, w, h, alpha ? 4 : 3).forEach((n, t) => { seen[t] += n; });
      cases++;
    }
  }
  assert.ok(seen.every((n) => n > 0), `every PNG filter type exercised: rows per type ${seen.join(', ')}`);
  assert.equal(cases, 60);
});

test('decodeImage from a path takes the fast path with the same bytes (the benchmark\'s and the dataset\'s input)', async (t) => {
  const dir = tempDir(t);
  for (let k = 0; k < 4; k++) {
    const path = join(dir, `s${k}.png`);
    const png = new Uint8Array(await sharp(mixed(k, 256, 256), { raw: { width: 256, height: 256, channels: 3 } }).png({ adaptiveFiltering: k % 2 === 1 }).toBuffer());
    writeFileSync(path, png);
    assert.ok(decodePlainPng(path, 256));
    assert.deepEqual((await decodeImage(path, 256)).data, await viaSharp(png, 256));
    assert.deepEqual((await decodeImage(path)).data, await viaSharp(png));
  }
});

test('PNGs the fast path must leave to sharp: palette, grey, 16-bit, interlaced, colour profile, orientation, transparency chunk', async () => {
  const w = 23, h = 17;
  const raw = () => sharp(mixed(7, w, h), { raw: { width: w, height: h, channels: 3 } });
  const pngs: Array<[string, Buffer]> = [
    ['palette', await raw().png({ palette: true }).toBuffer()],
    ['grey', await raw().toColourspace('b-w').png().toBuffer()],
    ['16-bit', await raw().toColourspace('rgb16').png().toBuffer()],
    ['interlaced', await raw().png({ progressive: true }).toBuffer()],
    ['icc profile', await raw().withIccProfile('p3').png().toBuffer()],
    ['exif orientation', await raw().withMetadata({ orientation: 6 }).png().toBuffer()],
  ];
  // IHDR's bit depth, colour type and interlace method as each case means them (so the case is what it says).
  const header = { palette: [8, 3, 0], grey: [8, 0, 0], '16-bit': [16, 2, 0], interlaced: [8, 2, 1] } as Record<string, number[]>;
  for (const [name, buf] of pngs) {
    const png = new Uint8Array(buf);
    if (header[name]) assert.deepEqual([png[24], png[25], png[28]], header[name], name);
    assert.equal(decodePlainPng(png), undefined, name);
    assert.deepEqual((await decodeImage(png)).data, await viaSharp(png), name);
  }
  // Bytes after the end of the zlib stream inside IDAT (CRC valid): left to sharp, whatever sharp makes of them.
  const one = await plainOf(raw);
  const withTail = replaceIdat(one, new Uint8Array([...idatData(one, 0), 1, 2, 3]));
  assert.ok(decodePlainPng(replaceIdat(one, idatData(one, 0))), 'the same PNG rebuilt without the tail takes the fast path');
  assert.equal(decodePlainPng(withTail), undefined, 'trailing bytes after the zlib stream');
  const tailWant = await viaSharp(withTail).catch((e: unknown) => e as Error);
  if (tailWant instanceof Error) await assert.rejects(decodeImage(withTail));
  else assert.deepEqual((await decodeImage(withTail)).data, tailWant);
  // Above 1024x1024 pixels the fast path steps aside (it runs on the calling thread); the same bytes through sharp.
  const big = new Uint8Array(await sharp({ create: { width: 1025, height: 1024, channels: 3, background: { r: 10, g: 200, b: 30 } } }).png().toBuffer());
  assert.equal(decodePlainPng(big), undefined, 'over 2^20 pixels');
  assert.deepEqual((await decodeImage(big)).data, await viaSharp(big), 'over 2^20 pixels');
  // A tRNS or gAMA chunk spliced into a plain PNG (before IDAT, with a valid CRC): left to sharp.
  const plain = new Uint8Array(await raw().png().toBuffer());
  for (const [type, body] of [['tRNS', [0, 1, 0, 2, 0, 3]], ['gAMA', [0, 0, 177, 143]]] as const) {
    const chunk = makeChunk(type, Uint8Array.from(body));
    const spliced = new Uint8Array([...plain.subarray(0, 33), ...chunk, ...plain.subarray(33)]);
    assert.equal(decodePlainPng(spliced), undefined, type);
    assert.deepEqual((await decodeImage(spliced)).data, await viaSharp(spliced), type);
  }
});

test('damaged PNGs: the fast path steps aside and decodeImage refuses them as before', async () => {
  const png = new Uint8Array(await sharp(mixed(3, 40, 30), { raw: { width: 40, height: 30, channels: 3 } }).png().toBuffer());
  const idat = indexOf(png, 'IDAT');
  const damaged: Array<[string, Uint8Array]> = [
    ['truncated', png.subarray(0, Math.floor(png.length * 0.6))],
    ['no IEND', png.subarray(0, png.length - 12)],
    ['trailing bytes', new Uint8Array([...png, 1, 2, 3])],
    ['a flipped byte in IDAT (bad CRC)', flip(png, idat + 20)],
    ['a flipped CRC of IHDR', flip(png, 8 + 8 + 13 + 1)],
  ];
  let refused = 0;
  for (const [name, bytes] of damaged) {
    assert.equal(decodePlainPng(bytes), undefined, name);
    // Whatever sharp does with it (refuse, or decode what it can), decodeImage does the same.
    const want = await viaSharp(bytes).catch((e: unknown) => e as Error);
    if (want instanceof Error) { await assert.rejects(decodeImage(bytes), name); refused++; } else assert.deepEqual((await decodeImage(bytes)).data, want, name);
  }
  assert.ok(refused >= 3, `sharp refuses the truncated and bad-CRC files (${refused} of ${damaged.length} refused)`);
});

/** A plain single-IDAT PNG of `raw`'s pixels. */
async function plainOf(raw: () => Sharp): Promise<Uint8Array> {
  return new Uint8Array(await raw().png().toBuffer());
}

/** The data of the k-th IDAT chunk. */
function idatData(b: Uint8Array, k: number): Uint8Array {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let p = 8, seen = 0; p < b.length;) {
    const len = dv.getUint32(p);
    if (String.fromCharCode(...b.subarray(p + 4, p + 8)) === 'IDAT' && seen++ === k) return b.subarray(p + 8, p + 8 + len);
    p += 12 + len;
  }
  throw new Error('no such IDAT');
}

/** The PNG with its first IDAT chunk's data replaced (CRC recomputed). */
function replaceIdat(b: Uint8Array, data: Uint8Array): Uint8Array {
  const at = indexOf(b, 'IDAT') - 4;
  const len = new DataView(b.buffer, b.byteOffset).getUint32(at);
  return new Uint8Array([...b.subarray(0, at), ...makeChunk('IDAT', data), ...b.subarray(at + 12 + len)]);
}

function flip(b: Uint8Array, at: number): Uint8Array {
  const c = new Uint8Array(b);
  c[at] ^= 0x5a;
  return c;
}

function indexOf(b: Uint8Array, type: string): number {
  for (let k = 0; k + 4 <= b.length; k++) if (String.fromCharCode(b[k], b[k + 1], b[k + 2], b[k + 3]) === type) return k;
  throw new Error(`no ${type}`);
}

/** A PNG chunk: length, type, data, CRC-32 (computed here bit by bit, independently of node:zlib). */
function makeChunk(type: string, data: Uint8Array): Uint8Array {
  const body = new Uint8Array([...Array.from(type, (c) => c.charCodeAt(0)), ...data]);
  let crc = 0xffffffff;
  for (const byte of body) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  crc = (crc ^ 0xffffffff) >>> 0;
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  out.set(body, 4);
  dv.setUint32(8 + data.length, crc);
  return out;
}
