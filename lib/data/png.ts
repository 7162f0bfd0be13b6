// A decoder for the one kind of PNG the data pipeline reads most: 8-bit RGB, not interlaced, no colour
// profile or orientation. PNG is lossless, so its pixels are exactly what sharp decodes (test/data/png.test.ts
// compares them byte for byte); it saves sharp's header read and pipeline, most of decodeImage's cost for
// a 256x256 image (docs/performance.md, "Corruption + decode"). Anything else (other colour types or
// depths, interlacing, iCCP, gAMA, eXIf, unknown chunks, a bad CRC or zlib stream) returns undefined and is
// left to sharp, whose checks and error messages then apply.
import { inflateSync } from 'node:zlib';
import type { RgbImage } from './image.ts';

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];
/** Chunks that do not change the decoded pixels (text, time, physical pixel size). */
const HARMLESS = new Set(['tEXt', 'zTXt', 'iTXt', 'tIME', 'pHYs']);

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

function crc32(b: Uint8Array, start: number, end: number): number {
  let c = -1;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** Width and height from an 8-bit RGB PNG's header, or undefined for any other input. */
export function pngRgb8Size(b: Uint8Array): { width: number; height: number } | undefined {
  if (b.length < 33 || SIGNATURE.some((v, i) => b[i] !== v)) return undefined;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dv.getUint32(8) !== 13 || String.fromCharCode(b[12]!, b[13]!, b[14]!, b[15]!) !== 'IHDR') return undefined;
  // bit depth 8, colour type 2 (RGB), compression 0, filter method 0, no interlace
  if (b[24] !== 8 || b[25] !== 2 || b[26] !== 0 || b[27] !== 0 || b[28] !== 0) return undefined;
  const width = dv.getUint32(16);
  const height = dv.getUint32(20);
  return width > 0 && height > 0 ? { width, height } : undefined;
}

/** The pixels of an 8-bit RGB PNG (see the module comment), or undefined to leave it to sharp. */
export function decodePngRgb8(b: Uint8Array): RgbImage | undefined {
  const size = pngRgb8Size(b);
  if (!size) return undefined;
  const { width, height } = size;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const idat: Uint8Array[] = [];
  let at = 8;
  let ended = false;
  while (at + 12 <= b.length) {
    const len = dv.getUint32(at);
    const type = String.fromCharCode(b[at + 4]!, b[at + 5]!, b[at + 6]!, b[at + 7]!);
    const end = at + 8 + len;
    if (end + 4 > b.length) return undefined;
    if (type === 'IDAT' || type === 'IHDR' || type === 'IEND') {
      if (crc32(b, at + 4, end) !== dv.getUint32(end)) return undefined;
    } else if (!HARMLESS.has(type)) {
      return undefined;
    }
    if (type === 'IDAT') idat.push(b.subarray(at + 8, end));
    at = end + 4;
    if (type === 'IEND') {
      ended = true;
      break;
    }
  }
  if (!ended || idat.length === 0) return undefined;
  const stride = width * 3;
  let raw: Uint8Array;
  try {
    raw = inflateSync(idat.length === 1 ? idat[0]! : Buffer.concat(idat));
  } catch {
    return undefined;
  }
  if (raw.length !== height * (stride + 1)) return undefined;
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const src = y * (stride + 1) + 1;
    const row = y * stride;
    const up = row - stride; // the row above in `out` (absent for y = 0: read as zeros)
    switch (filter) {
      case 0:
        out.set(raw.subarray(src, src + stride), row);
        break;
      case 1:
        for (let i = 0; i < stride; i++) out[row + i] = raw[src + i]! + (i >= 3 ? out[row + i - 3]! : 0);
        break;
      case 2:
        if (y === 0) out.set(raw.subarray(src, src + stride), row);
        else for (let i = 0; i < stride; i++) out[row + i] = raw[src + i]! + out[up + i]!;
        break;
      case 3:
        for (let i = 0; i < stride; i++) {
          const a = i >= 3 ? out[row + i - 3]! : 0;
          const c = y > 0 ? out[up + i]! : 0;
          out[row + i] = raw[src + i]! + ((a + c) >> 1);
        }
        break;
      case 4:
        for (let i = 0; i < stride; i++) {
          const a = i >= 3 ? out[row + i - 3]! : 0;
          const c = y > 0 ? out[up + i]! : 0;
          const d = i >= 3 && y > 0 ? out[up + i - 3]! : 0;
          const p = a + c - d;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - c);
          const pc = Math.abs(p - d);
          out[row + i] = raw[src + i]! + (pa <= pb && pa <= pc ? a : pb <= pc ? c : d);
        }
        break;
      default:
        return undefined; // not a PNG filter: let sharp report it
    }
  }
  return { width, height, data: out };
}
