// The plain PNG case of decodeImage without libvips: an 8-bit RGB or RGBA, non-interlaced PNG whose chunks cannot
// change sharp's output (no colour profile, gamma, orientation, palette or transparency chunk) is node:zlib's
// inflate plus the five PNG row filters, and its pixels are the bytes sharp returns (alpha dropped, as removeAlpha).
// Anything else, and anything irregular (a bad CRC, a short or long zlib stream, an unknown filter), returns
// undefined and the caller decodes with sharp as before, so sharp's checks and error messages are unchanged.
// Why: at 256x256 this is ~0.5 ms of CPU against ~1.1-1.5 ms for sharp's call (docs/performance.md, round 9).
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import * as zlib from 'node:zlib';
import type { RgbImage } from './image.ts';

/** Chunks whose presence leaves sharp's decoded pixels as they are (physical size, text, time). */
const NEUTRAL = new Set(['pHYs', 'tEXt', 'tIME']);

/** node:zlib's crc32 (Node >= 20.15); without it every PNG takes sharp's path. */
const crc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

/** The file's bytes (one synchronous read: these are small files, and sharp's path is what a large one takes). */
function readAll(path: string): Uint8Array | undefined {
  let fd: number;
  try { fd = openSync(path, 'r'); } catch { return undefined; }
  try {
    const size = fstatSync(fd).size;
    if (size > MAX_FAST_BYTES) return undefined;
    const buf = new Uint8Array(size);
    let got = 0;
    while (got < size) { const n = readSync(fd, buf, got, size - got, got); if (n <= 0) return undefined; got += n; }
    return buf;
  } catch { return undefined; } finally { closeSync(fd); }
}

/** Files above this size take sharp's path (its streaming decode suits them; this path holds the whole file). */
const MAX_FAST_BYTES = 4 << 20;
/**
 * Images above this many pixels (1024x1024) take sharp's path: this one runs on the calling thread, ~0.2 ms at 256x256,
 * so a large image would hold a role's event loop for tens of ms, where sharp decodes on its own threads.
 */
const MAX_FAST_PIXELS = 1 << 20;

/**
 * The RGB pixels of a plain 8-bit RGB/RGBA PNG (see the header), or undefined where sharp must decode it. `input`:
 * a path or the file's bytes. With `size`, only a `size`x`size` image is decoded here (sharp's centre-cropping resize
 * to its own size leaves the pixels as they are); any other size returns undefined before inflating.
 */
export function decodePlainPng(input: string | Uint8Array, size?: number): RgbImage | undefined {
  if (!crc32) return undefined;
  const b = typeof input === 'string' ? readAll(input) : input;
  if (!b || b.length < 8 + 25 + 12) return undefined;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  // The signature was checked by the caller (isPng); the first chunk must be IHDR.
  let p = 8;
  let width = 0, height = 0, channels = 0;
  const idat: Uint8Array[] = [];
  let ended = false, sawIdat = false, idatDone = false;
  while (p + 12 <= b.length) {
    const len = dv.getUint32(p);
    if (len > b.length - p - 12) return undefined;
    const type = String.fromCharCode(b[p + 4], b[p + 5], b[p + 6], b[p + 7]);
    if (crc32(b.subarray(p + 4, p + 8 + len)) !== dv.getUint32(p + 8 + len)) return undefined;
    const data = b.subarray(p + 8, p + 8 + len);
    if (p === 8) {
      if (type !== 'IHDR' || len !== 13) return undefined;
      width = dv.getUint32(p + 8); height = dv.getUint32(p + 12);
      const depth = data[8], colour = data[9];
      // 8-bit RGB (2) or RGBA (6); compression 0, filter method 0, no interlace.
      if (depth !== 8 || (colour !== 2 && colour !== 6) || data[10] !== 0 || data[11] !== 0 || data[12] !== 0) return undefined;
      if (width < 1 || height < 1 || width * height > MAX_FAST_PIXELS) return undefined;
      if (size !== undefined && (width !== size || height !== size)) return undefined;
      channels = colour === 2 ? 3 : 4;
    } else if (type === 'IDAT') {
      if (idatDone) return undefined; // IDAT chunks must be consecutive
      sawIdat = true; idat.push(data);
    } else if (type === 'IEND') {
      ended = true; p += 12 + len; break;
    } else {
      if (sawIdat) idatDone = true;
      if (!NEUTRAL.has(type)) return undefined;
    }
    p += 12 + len;
  }
  if (!ended || !sawIdat || p !== b.length) return undefined;
  const rowLen = width * channels, stride = rowLen + 1, rawLen = stride * height;
  let raw: Uint8Array;
  try {
    // One output chunk of the expected size (one allocation, no concatenation); a longer stream makes a second chunk
    // and fails the length check below.
    const stream = idat.length === 1 ? idat[0] : Buffer.concat(idat);
    // info: the engine tells how much input the stream took; bytes after the zlib stream's end go to sharp's judgement.
    const { buffer: z, engine } = zlib.inflateSync(stream, { chunkSize: Math.max(64, rawLen), info: true } as zlib.ZlibOptions) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
    if (engine.bytesWritten !== stream.length) return undefined;
    raw = new Uint8Array(z.buffer, z.byteOffset, z.byteLength);
  } catch { return undefined; }
  if (raw.length !== rawLen) return undefined;
  if (!unfilter(raw, rowLen, height, channels)) return undefined;
  // The pixels packed to RGB in place (each byte moves towards the start, never past one not yet read): the image is
  // a view of the inflated buffer, no second 196 KiB array per 256x256 image.
  if (channels === 3) {
    for (let y = 0; y < height; y++) raw.copyWithin(y * rowLen, y * stride + 1, (y + 1) * stride);
  } else {
    for (let y = 0, o = 0; y < height; y++) {
      for (let k = y * stride + 1, e = (y + 1) * stride; k < e; k += 4, o += 3) { raw[o] = raw[k]; raw[o + 1] = raw[k + 1]; raw[o + 2] = raw[k + 2]; }
    }
  }
  const pixels = raw.subarray(0, width * height * 3);
  // A small output may sit in Node's shared Buffer pool: such an image gets its own copy, as sharp's do.
  return { width, height, data: raw.byteOffset === 0 && raw.buffer.byteLength === rawLen ? pixels : new Uint8Array(pixels) };
}

/**
 * Undoes the PNG row filters in place (each row: a filter byte, then rowLen bytes; bpp bytes per pixel). The previous
 * row is read already unfiltered. False for an unknown filter type.
 */
function unfilter(raw: Uint8Array, rowLen: number, height: number, bpp: number): boolean {
  const stride = rowLen + 1;
  for (let y = 0; y < height; y++) {
    const s = y * stride + 1, u = s - stride; // this row's first byte; the row above's (when y > 0)
    const type = raw[s - 1];
    if (type === 0) continue;
    if (type === 1) {
      for (let i = s + bpp, e = s + rowLen; i < e; i++) raw[i] = raw[i] + raw[i - bpp];
    } else if (type === 2) {
      if (y > 0) for (let i = 0; i < rowLen; i++) raw[s + i] = raw[s + i] + raw[u + i];
    } else if (type === 3) {
      if (y === 0) {
        for (let i = s + bpp, e = s + rowLen; i < e; i++) raw[i] = raw[i] + (raw[i - bpp] >> 1);
      } else {
        for (let i = 0; i < bpp; i++) raw[s + i] = raw[s + i] + (raw[u + i] >> 1);
        for (let i = bpp; i < rowLen; i++) raw[s + i] = raw[s + i] + ((raw[s + i - bpp] + raw[u + i]) >> 1);
      }
    } else if (type === 4) {
      if (y === 0) {
        // Above and upper-left are 0: Paeth picks the left byte (a Sub filter).
        for (let i = s + bpp, e = s + rowLen; i < e; i++) raw[i] = raw[i] + raw[i - bpp];
      } else {
        for (let i = 0; i < bpp; i++) raw[s + i] = raw[s + i] + raw[u + i]; // left and upper-left are 0: the byte above
        for (let i = bpp; i < rowLen; i++) {
          const a = raw[s + i - bpp], bb = raw[u + i], c = raw[u + i - bpp];
          const pa = bb > c ? bb - c : c - bb; // |p - a| with p = a + b - c
          const pb = a > c ? a - c : c - a; // |p - b|
          const q = a + bb - 2 * c, pc = q < 0 ? -q : q; // |p - c|
          raw[s + i] = raw[s + i] + (pa <= pb && pa <= pc ? a : pb <= pc ? bb : c);
        }
      }
    } else return false;
  }
  return true;
}
