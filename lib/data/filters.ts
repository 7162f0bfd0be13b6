// Typed-array image filters used by the corruptions: separable convolution, small 2-D stencils, bilinear
// remapping, and Gaussian blur through sharp (libvips). Planes are Float32Array unless noted; images are
// interleaved RGB (see image.ts). Borders follow OpenCV's default (BORDER_REFLECT_101: ...cba|abcd|dcb...).
import sharp, { type Sharp } from 'sharp';
import type { RgbImage } from './image.ts';
import { convolveExactRgb, isExactConvolution } from './convolve-exact.ts';
import { lineRowsBytes } from './line-blur.ts';

/** Reflect-101 index into [0, n). */
export function reflect101(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * n - 2;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

/** OpenCV's getGaussianKernel: `size` taps (odd), `sigma` <= 0 picks 0.3*((size-1)/2 - 1) + 0.8. Sums to 1. */
export function gaussianKernel1D(size: number, sigma: number): Float32Array {
  if (size < 1 || size % 2 === 0) throw new Error(`gaussianKernel1D: size must be odd and positive, got ${size}`);
  if (sigma <= 0) sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8;
  const k = new Float32Array(size);
  const c = (size - 1) / 2;
  let s = 0;
  for (let i = 0; i < size; i++) {
    k[i] = Math.exp(-((i - c) ** 2) / (2 * sigma * sigma));
    s += k[i];
  }
  for (let i = 0; i < size; i++) k[i] /= s;
  return k;
}

/**
 * Separable convolution of an interleaved image with `channels` channels: rows with `kx`, then columns with
 * `ky` (odd lengths, centred). Input any numeric array; output Float32Array (not rounded or clamped).
 */
export function convolveSeparable(
  source: ArrayLike<number>, width: number, height: number, channels: number,
  kx: Float32Array, ky: Float32Array,
): Float32Array {
  const src = asFloat32(source);
  const tmp = new Float32Array(width * height * channels);
  const out = new Float32Array(width * height * channels);
  const rx = (kx.length - 1) >> 1;
  const ry = (ky.length - 1) >> 1;
  const nk = kx.length;
  const rowLen = width * channels;
  // Horizontal pass over a reflect-padded copy of each row (no branches in the inner loop).
  const pad = new Float32Array((width + 2 * rx) * channels);
  for (let y = 0; y < height; y++) {
    const row = y * rowLen;
    for (let i = 0; i < width + 2 * rx; i++) {
      const sx = row + reflect101(i - rx, width) * channels;
      for (let c = 0; c < channels; c++) pad[i * channels + c] = src[sx + c];
    }
    if (channels === 3) {
      for (let x = 0, o = row; x < width; x++, o += 3) {
        let r = 0, g = 0, b = 0;
        for (let k = 0, p = x * 3; k < nk; k++, p += 3) {
          const w = kx[k];
          r += w * pad[p]; g += w * pad[p + 1]; b += w * pad[p + 2];
        }
        tmp[o] = r; tmp[o + 1] = g; tmp[o + 2] = b;
      }
    } else {
      for (let x = 0; x < width; x++) {
        for (let c = 0; c < channels; c++) {
          let acc = 0;
          for (let k = 0, p = x * channels + c; k < nk; k++, p += channels) acc += kx[k] * pad[p];
          tmp[row + x * channels + c] = acc;
        }
      }
    }
  }
  // Vertical pass: whole rows at a time.
  for (let y = 0; y < height; y++) {
    const dst = y * rowLen;
    for (let k = 0; k < ky.length; k++) {
      const w = ky[k];
      const srcRow = reflect101(y + k - ry, height) * rowLen;
      for (let j = 0; j < rowLen; j++) out[dst + j] += w * tmp[srcRow + j];
    }
  }
  return out;
}

/** Area-average downsampling by an integer factor (partial blocks at the right and bottom edges); `into` receives it. */
export function downsampleArea(
  source: ArrayLike<number>, width: number, height: number, channels: number, f: number, into?: Float32Array,
): { data: Float32Array; width: number; height: number } {
  const cw = Math.ceil(width / f), chh = Math.ceil(height / f);
  if (into && into.length !== cw * chh * channels) throw new Error(`downsampleArea: out has ${into.length} elements, expected ${cw * chh * channels}`);
  if (source instanceof Uint8Array && f * f * 255 < 2 ** 24) return downsampleBytes(source, width, height, channels, f, into);
  const src = asFloat32(source);
  const out = into ? into.fill(0) : new Float32Array(cw * chh * channels);
  const rowLen = width * channels;
  for (let cy = 0; cy < chh; cy++) {
    const y0 = cy * f, y1 = Math.min(height, y0 + f);
    const orow = cy * cw * channels;
    for (let y = y0; y < y1; y++) {
      const row = y * rowLen;
      for (let cx = 0, x = 0; cx < cw; cx++) {
        const o = orow + cx * channels;
        const xe = Math.min(width, x + f);
        for (; x < xe; x++) for (let c = 0; c < channels; c++) out[o + c] += src[row + x * channels + c];
      }
    }
    for (let cx = 0; cx < cw; cx++) {
      const inv = 1 / ((y1 - y0) * (Math.min(width, cx * f + f) - cx * f));
      for (let c = 0; c < channels; c++) out[orow + cx * channels + c] *= inv;
    }
  }
  return { data: out, width: cw, height: chh };
}

/**
 * downsampleArea of bytes, with the same result: a block's float32 running sum of bytes is an integer below
 * 2^24 (exact), so integer sums scaled by the same reciprocal round to the same float32 values.
 */
function downsampleBytes(
  src: Uint8Array, width: number, height: number, channels: number, f: number, into?: Float32Array,
): { data: Float32Array; width: number; height: number } {
  if (channels === 3) return downsampleRgbBytes(src, width, height, f, into);
  const cw = Math.ceil(width / f), chh = Math.ceil(height / f);
  const out = into ?? new Float32Array(cw * chh * channels);
  const acc = new Int32Array(cw * channels);
  const rowLen = width * channels;
  for (let cy = 0; cy < chh; cy++) {
    const y0 = cy * f, y1 = Math.min(height, y0 + f);
    acc.fill(0);
    for (let y = y0; y < y1; y++) {
      const row = y * rowLen;
      for (let cx = 0; cx < cw; cx++) {
        const a = cx * channels;
        for (let k = row + cx * f * channels, e = row + Math.min(width, cx * f + f) * channels; k < e; k += channels) {
          for (let c = 0; c < channels; c++) acc[a + c] += src[k + c];
        }
      }
    }
    const orow = cy * cw * channels;
    for (let cx = 0; cx < cw; cx++) {
      const inv = 1 / ((y1 - y0) * (Math.min(width, cx * f + f) - cx * f));
      for (let c = 0; c < channels; c++) out[orow + cx * channels + c] = acc[cx * channels + c] * inv;
    }
  }
  return { data: out, width: cw, height: chh };
}

/** downsampleBytes for interleaved RGB: blockMeansRgb into a new or given float32 image. */
function downsampleRgbBytes(src: Uint8Array, width: number, height: number, f: number, into?: Float32Array): { data: Float32Array; width: number; height: number } {
  const cw = Math.ceil(width / f), chh = Math.ceil(height / f);
  const out = into ?? new Float32Array(cw * chh * 3); // every element is written
  return { data: blockMeansRgb(src, width, height, f, out, new Int32Array(cw * 3)), width: cw, height: chh };
}

/**
 * downsampleBytes for interleaved RGB (lens_blur's and mean_shift's case) into `out`: float32 values, stored as float32
 * or (mean_shift's search reads doubles) as the same values in a Float64Array, with no float32 image and copy in
 * between. The same integer sums with the three channels in locals and one pass per source row, so the same results
 * at a fraction of the loop overhead. `acc` holds at least ceil(width / f) * 3 sums; every element of `out` is written.
 */
export function blockMeansRgb<T extends Float32Array | Float64Array>(src: Uint8Array, width: number, height: number, f: number, out: T, acc: Int32Array): T {
  const cw = Math.ceil(width / f), chh = Math.ceil(height / f);
  if (out.length < cw * chh * 3 || acc.length < cw * 3) throw new Error(`blockMeansRgb: buffers of ${out.length} and ${acc.length} elements for ${cw}x${chh}`);
  const rowLen = width * 3;
  // Whole f x f blocks summed straight into locals, unrolled for factors 2 and 4 (mean_shift at 256 px, lens_blur mid):
  // integer sums, so the same totals in any order.
  const fullW = Math.floor(width / f), fullH = Math.floor(height / f);
  const fast = f === 2 || f === 4;
  if (fast) {
    const inv = 1 / (f * f);
    for (let cy = 0; cy < fullH; cy++) {
      for (let cx = 0, k = cy * f * rowLen, o = cy * cw * 3; cx < fullW; cx++, k += f * 3, o += 3) {
        let r = 0, g = 0, b = 0;
        for (let y = 0, q = k; y < f; y++, q += rowLen) {
          r += src[q] + src[q + 3]; g += src[q + 1] + src[q + 4]; b += src[q + 2] + src[q + 5];
          if (f === 4) { r += src[q + 6] + src[q + 9]; g += src[q + 7] + src[q + 10]; b += src[q + 8] + src[q + 11]; }
        }
        out[o] = Math.fround(r * inv); out[o + 1] = Math.fround(g * inv); out[o + 2] = Math.fround(b * inv);
      }
    }
  }
  // The rest (all of it for other factors): per coarse row, each block's row sums accumulated in `acc`.
  for (let cy = 0; cy < chh; cy++) {
    const cx0 = fast && cy < fullH ? fullW : 0;
    if (cx0 >= cw) continue;
    const y0 = cy * f, y1 = Math.min(height, y0 + f);
    acc.fill(0, cx0 * 3, cw * 3);
    for (let y = y0; y < y1; y++) {
      const row = y * rowLen;
      for (let cx = cx0, a = cx0 * 3, k = row + cx0 * f * 3; cx < cw; cx++, a += 3) {
        let r = 0, g = 0, b = 0;
        for (const e = row + Math.min(width, cx * f + f) * 3; k < e; k += 3) { r += src[k]; g += src[k + 1]; b += src[k + 2]; }
        acc[a] += r; acc[a + 1] += g; acc[a + 2] += b;
      }
    }
    for (let cx = cx0, a = cx0 * 3, o = (cy * cw + cx0) * 3; cx < cw; cx++, a += 3, o += 3) {
      const inv = 1 / ((y1 - y0) * (Math.min(width, cx * f + f) - cx * f));
      out[o] = Math.fround(acc[a] * inv); out[o + 1] = Math.fround(acc[a + 1] * inv); out[o + 2] = Math.fround(acc[a + 2] * inv);
    }
  }
  return out;
}

/** Bilinear upsampling of a grid made by downsampleArea(…, f) back to width x height. */
export function upsampleBilinear<T extends Float32Array | Uint8ClampedArray = Float32Array>(
  src: Float32Array, cw: number, chh: number, channels: number, f: number, width: number, height: number,
  out: T = new Float32Array(width * height * channels) as T,
): T {
  // `out` may be bytes (rounded on store); Math.fround keeps the float32 rounding step of a Float32Array result
  // in between, so bytes equal those of rounding the float result.
  if (out.length !== width * height * channels) throw new Error(`upsampleBilinear: out has ${out.length} elements, expected ${width * height * channels}`);
  const x0 = new Int32Array(width), x1 = new Int32Array(width), fx = new Float32Array(width);
  for (let x = 0; x < width; x++) {
    const u = Math.min(cw - 1, Math.max(0, (x + 0.5) / f - 0.5));
    const i0 = Math.floor(u);
    x0[x] = i0 * channels; x1[x] = Math.min(cw - 1, i0 + 1) * channels; fx[x] = u - i0;
  }
  // Rows are interpolated horizontally once per coarse row pair, then blended vertically.
  const rowA = new Float32Array(width * channels), rowB = new Float32Array(width * channels);
  let haveA = -1, haveB = -1;
  const fill = (dst: Float32Array, cy: number): void => {
    const r = cy * cw * channels;
    for (let x = 0; x < width; x++) {
      const a = r + x0[x], b = r + x1[x], t = fx[x], o = x * channels;
      for (let c = 0; c < channels; c++) dst[o + c] = src[a + c] + (src[b + c] - src[a + c]) * t;
    }
  };
  const rowLen = width * channels;
  for (let y = 0; y < height; y++) {
    const v = Math.min(chh - 1, Math.max(0, (y + 0.5) / f - 0.5));
    const y0 = Math.floor(v), y1 = Math.min(chh - 1, y0 + 1), fy = v - y0;
    if (haveA !== y0) { if (haveB === y0) { rowA.set(rowB); } else fill(rowA, y0); haveA = y0; }
    if (haveB !== y1) { fill(rowB, y1); haveB = y1; }
    const o = y * rowLen;
    for (let j = 0; j < rowLen; j++) out[o + j] = Math.fround(rowA[j] + (rowB[j] - rowA[j]) * fy);
  }
  return out;
}

/**
 * Gaussian blur of an interleaved image (any channel count), float output. Small sigmas convolve directly
 * (radius ceil(3 sigma)); from sigma 4 on, the image is area-downsampled by floor(sigma / 2), blurred there
 * and bilinearly upsampled, with the coarse sigma chosen so the total variance matches: O(pixels) whatever
 * the sigma, and within a few grey levels of the direct result.
 */
export function gaussianBlur(
  src: ArrayLike<number>, width: number, height: number, channels: number, sigma: number,
): Float32Array;
/** The same, rounded and clamped into `out` (bytes) without a float image in between on the upsampled path. */
export function gaussianBlur(
  src: ArrayLike<number>, width: number, height: number, channels: number, sigma: number, out: Uint8ClampedArray,
): Uint8ClampedArray;
export function gaussianBlur(
  src: ArrayLike<number>, width: number, height: number, channels: number, sigma: number, out?: Uint8ClampedArray,
): Float32Array | Uint8ClampedArray {
  const direct = (r: Float32Array): Float32Array | Uint8ClampedArray => { if (!out) return r; out.set(r); return out; };
  if (sigma <= 0) return direct(new Float32Array(src));
  const f = sigma < 4 ? 1 : Math.floor(sigma / 2);
  if (f === 1) {
    const k = gaussianKernel1D(2 * Math.ceil(3 * sigma) + 1, sigma);
    return direct(convolveSeparable(src, width, height, channels, k, k));
  }
  const { small, blurred } = coarseBlur(src, width, height, channels, sigma, f);
  return out
    ? upsampleBilinear(blurred, small.width, small.height, channels, f, width, height, out)
    : upsampleBilinear(blurred, small.width, small.height, channels, f, width, height);
}

/** gaussianBlur's downsampled path up to the upsampling: the area-downsampled image (factor f >= 2) and its blur. */
function coarseBlur(
  src: ArrayLike<number>, width: number, height: number, channels: number, sigma: number, f: number,
): { small: { data: Float32Array; width: number; height: number }; blurred: Float32Array } {
  const small = downsampleArea(src, width, height, channels, f);
  const rest = sigma * sigma - (f * f - 1) / 12 - (f * f) / 6;
  const sc = Math.sqrt(Math.max(rest, 0.25 * f * f)) / f;
  const k = gaussianKernel1D(2 * Math.ceil(3 * sc) + 1, sc);
  return { small, blurred: convolveSeparable(small.data, small.width, small.height, channels, k, k) };
}

/**
 * Box filter (mean over a (2rx+1) x (2ry+1) window, reflect-101 borders), rows then columns, with running
 * sums: O(1) per pixel whatever the radius.
 */
export function boxBlur(
  src: ArrayLike<number>, width: number, height: number, channels: number, rx: number, ry: number,
): Float32Array {
  const tmp = new Float32Array(width * height * channels);
  const out = new Float32Array(width * height * channels);
  const rowLen = width * channels;
  const nx = 2 * rx + 1;
  // Padded row (reflect-101), then a running sum along it.
  const pad = new Float32Array((width + 2 * rx + 1) * channels);
  for (let y = 0; y < height; y++) {
    const row = y * rowLen;
    for (let i = 0; i < width + 2 * rx + 1; i++) {
      const sx = row + reflect101(i - rx, width) * channels;
      for (let c = 0; c < channels; c++) pad[i * channels + c] = src[sx + c];
    }
    for (let c = 0; c < channels; c++) {
      let acc = 0;
      for (let k = 0; k < nx; k++) acc += pad[k * channels + c];
      for (let x = 0, add = nx * channels + c, sub = c; x < width; x++, add += channels, sub += channels) {
        tmp[row + x * channels + c] = acc / nx;
        acc += pad[add] - pad[sub];
      }
    }
  }
  const ny = 2 * ry + 1;
  const acc = new Float64Array(rowLen);
  for (let k = -ry; k <= ry; k++) {
    const r = reflect101(k, height) * rowLen;
    for (let j = 0; j < rowLen; j++) acc[j] += tmp[r + j];
  }
  for (let y = 0; y < height; y++) {
    const dst = y * rowLen;
    const add = reflect101(y + ry + 1, height) * rowLen;
    const sub = reflect101(y - ry, height) * rowLen;
    for (let j = 0; j < rowLen; j++) {
      out[dst + j] = acc[j] / ny;
      acc[j] += tmp[add + j] - tmp[sub + j];
    }
  }
  return out;
}

/**
 * The largest buffer (elements) kept for reuse across calls: 2^21 floats (8 MiB) holds a 256x256 image's buffers
 * several times over; a larger image's buffers are allocated per call as before, so one large image does not pin
 * them in memory.
 */
export const KEEP_SCRATCH_ELEMENTS = 1 << 21;

let lineScratch = new Float32Array(0);
/** Scratch buffers reused across calls (the filters are synchronous, so no two calls share one at a time). */
let scratchF32 = new Float32Array(0);
let scratchF64 = new Float64Array(0);
let scratchI32 = new Int32Array(0);
let divLut = { n: 0, v: new Float32Array(0) };

/**
 * boxBlur(src, width, height, 3, rx, ry) of RGB bytes, the same float32 values (color_diffusion's blur above i 0.9).
 * `out` (optional) receives the result.
 */
export function boxBlurRgbBytes(src: Uint8Array, width: number, height: number, rx: number, ry: number, out?: Float32Array): Float32Array {
  const res = out ?? new Float32Array(width * height * 3);
  if (res.length !== width * height * 3) throw new Error(`boxBlurRgbBytes: out has ${res.length} elements, expected ${width * height * 3}`);
  boxSumsRgbRows(src, width, height, rx, ry, (y, sums, count, tmp, add, sub) => meanRow(sums, count, res, y * sums.length, tmp, add, sub));
  return res;
}

function meanRow(sums: Float64Array, count: number, out: Float32Array, k0: number, tmp: Float32Array, add: number, sub: number): void {
  if (add < 0) { for (let j = 0; j < sums.length; j++) out[k0 + j] = sums[j] / count; return; }
  for (let j = 0; j < sums.length; j++) { const v = sums[j]; out[k0 + j] = v / count; sums[j] = v + (tmp[add + j] - tmp[sub + j]); }
}

/**
 * boxSumsRgbRows' row handler: row y's column sums (width * 3 doubles; boxBlur's value is the float32 of sums[j] /
 * count), which the handler then moves on to row y + 1 in the same loop: after reading sums[j], sums[j] += tmp[add + j]
 * - tmp[sub + j] (in that order: the running sums' arithmetic). add < 0 on the last row: no update.
 */
export type BoxRow = (y: number, sums: Float64Array, count: number, tmp: Float32Array, add: number, sub: number) => void;

/**
 * boxBlurRgbBytes one output row at a time, as sums: `onRow` gets row y's column sums (width * 3 doubles) and moves
 * them on to the next row as it reads them (BoxRow), and boxBlur's value is the float32 of sums[j] / count. A caller
 * that only blends the blur into something needs no blurred image (color_diffusion).
 * - rows: boxBlur's double running sum of bytes is an integer S, so each row value is fround(S / nx), read from a
 *   table of those quotients; the three channels' sums run side by side in locals;
 * - columns: boxBlur's own loop (double running sums of the float32 row values, in the same order), the row values
 *   in a buffer reused across calls (no 786 KiB allocation and zeroing per 256x256 image); each step of the running
 *   sums is made by the row handler in the loop that reads the row (one pass over the sums a row, not two).
 */
export function boxSumsRgbRows(
  src: Uint8Array, width: number, height: number, rx: number, ry: number, onRow: BoxRow,
): void {
  const rowLen = width * 3, n = rowLen * height;
  if (src.length !== n) throw new Error(`boxSumsRgbRows: ${src.length} bytes for ${width}x${height}x3`);
  const nx = 2 * rx + 1, ny = 2 * ry + 1;
  const tmp = n > KEEP_SCRATCH_ELEMENTS ? new Float32Array(n) : scratchF32.length >= n ? scratchF32 : (scratchF32 = new Float32Array(n));
  if (divLut.n !== nx) {
    const v = new Float32Array(255 * nx + 1);
    for (let S = 0; S < v.length; S++) v[S] = S / nx;
    divLut = { n: nx, v };
  }
  const q = divLut.v;
  // Source offsets of the reflect-101-padded row (boxBlur's pad, one extra element at the end).
  const padLen = width + 2 * rx + 1;
  if (scratchI32.length < padLen) scratchI32 = new Int32Array(padLen);
  const idx = scratchI32;
  for (let i = 0; i < padLen; i++) idx[i] = reflect101(i - rx, width) * 3;
  for (let y = 0, row = 0; y < height; y++, row += rowLen) {
    let s0 = 0, s1 = 0, s2 = 0;
    for (let k = 0; k < nx; k++) { const p = row + idx[k]; s0 += src[p]; s1 += src[p + 1]; s2 += src[p + 2]; }
    for (let x = 0, o = row; x < width; x++, o += 3) {
      tmp[o] = q[s0]; tmp[o + 1] = q[s1]; tmp[o + 2] = q[s2];
      const a = row + idx[x + nx], b = row + idx[x];
      s0 += src[a] - src[b]; s1 += src[a + 1] - src[b + 1]; s2 += src[a + 2] - src[b + 2];
    }
  }
  if (scratchF64.length !== rowLen) scratchF64 = new Float64Array(rowLen);
  const acc = scratchF64;
  acc.fill(0);
  for (let k = -ry; k <= ry; k++) {
    const r = reflect101(k, height) * rowLen;
    for (let j = 0; j < rowLen; j++) acc[j] += tmp[r + j];
  }
  for (let y = 0; y < height; y++) {
    if (y + 1 < height) onRow(y, acc, ny, tmp, reflect101(y + ry + 1, height) * rowLen, reflect101(y - ry, height) * rowLen);
    else onRow(y, acc, ny, tmp, -1, -1);
  }
}

/** `src` as a Float32Array (itself if it already is one), so the hot loops see one element type. */
export function asFloat32(src: ArrayLike<number>): Float32Array {
  // The constructor converts a typed array natively; Float32Array.from walks it through the iterator protocol.
  return src instanceof Float32Array ? src : new Float32Array(src as ArrayLike<number>);
}

/**
 * Above this many multiply-adds an operation goes to libvips (sharp: C, SIMD, about 0.7 ms per call of fixed
 * cost); below it, typed-array loops are cheaper. At 256x256 the sharp path wins for every blur; at the
 * 32..64 px training resolutions the JS path is 10-20x faster.
 */
export const SHARP_THRESHOLD = 1_500_000;

/**
 * Gaussian blur (kernel truncated at 3 sigma) of an RGB image, rounded to 8 bits: gaussianBlur in JS when
 * that is cheap (small images, or large sigmas where it works on a downsampled copy), libvips' gaussblur
 * (sharp) otherwise.
 */
export async function blurRgb(img: RgbImage, sigma: number): Promise<Uint8Array> {
  const { width: w, height: h } = img;
  if (blurRgbInJs(w, h, sigma)) {
    const out = new Uint8Array(w * h * 3);
    gaussianBlur(img.data, w, h, 3, sigma, new Uint8ClampedArray(out.buffer));
    return out;
  }
  // min_ampl 0.011 = exp(-4.5): the mask reaches 3 sigma, like the JS kernel.
  return viaSharpRaw(img, (p) => p.blur({ sigma: Math.min(1000, sigma), minAmplitude: 0.011 }));
}

/**
 * Convolution of an RGB image with a square kernel (odd side, weights as given, no normalisation), rounded
 * and clamped to 8 bits, edges replicated. Sparse JS loops when cheap, libvips (sharp) otherwise, or libvips' bytes
 * from convolveExactRgb (WebAssembly) where they are exact.
 */
export async function convolveRgb(img: RgbImage, kernel: Float32Array, side: number): Promise<Uint8Array> {
  const taps = sparseTaps(img, kernel, side);
  // libvips' bytes without libvips where the sums are exact (motion_blur's line kernels): ~5x at 256 px (round 18).
  if (!taps && isExactConvolution(kernel)) return convolveExactRgb(img, kernel, side);
  if (!taps) {
    // Note (round 6): sharp replaces a fractional offset by 0, so this 0.5 has no effect and the cast truncates the
    // float sums (floor), where the JS path below rounds. Kept: every checkpoint so far was trained on these bytes.
    return viaSharpRaw(img, (p) => p.convolve({ width: side, height: side, kernel: Array.from(kernel), scale: 1, offset: 0.5 }));
  }
  const { width: w, height: h } = img;
  const out = new Uint8Array(w * h * 3);
  const o = new Uint8ClampedArray(out.buffer);
  for (let y = 0; y < h; y++) convolveRowRgb(img, taps, y, o, y * w * 3);
  return out;
}

/**
 * out = addWeighted(img, wa, convolveRgb(img, kernel, side), wb) (sharpness_change's blend: clamp(round(a wa + b wb))
 * per byte) where convolveRgb takes its JS path: each row's convolved bytes (the same values, in a reused row) are
 * blended at once, with no convolved image in between. Returns false, writing nothing, where convolveRgb goes to
 * libvips (the caller then convolves and blends in two steps).
 */
export function convolveBlendRgb(img: RgbImage, kernel: Float32Array, side: number, wa: number, wb: number, out: Uint8ClampedArray): boolean {
  const taps = sparseTaps(img, kernel, side);
  if (!taps) return false;
  const { width: w, height: h, data: a } = img;
  if (out.length !== a.length) throw new Error(`convolveBlendRgb: out has ${out.length} elements, expected ${a.length}`);
  const rowLen = w * 3;
  if (convRow.length < rowLen) convRow = new Uint8ClampedArray(rowLen);
  const row = convRow;
  const cross = isExactCross(taps);
  for (let y = 0, k0 = 0; y < h; y++, k0 += rowLen) {
    if (cross && y >= 1 && y < h - 1 && w >= 3) {
      // Inside the image: the same sums grouped (exact, see isExactCross), rounded and blended in one pass; the first
      // and last pixels through the tap loop.
      crossBlendRow(a, k0 + 3, k0 + rowLen - 3, w * 3, taps.wt[2], taps.wt[0], wa, wb, out);
      convolveRowRgb(img, taps, y, row, 0, 0, 1);
      convolveRowRgb(img, taps, y, row, 0, w - 1, w);
      out[k0] = a[k0] * wa + row[0] * wb; out[k0 + 1] = a[k0 + 1] * wa + row[1] * wb; out[k0 + 2] = a[k0 + 2] * wa + row[2] * wb;
      const e = k0 + rowLen - 3, j = rowLen - 3;
      out[e] = a[e] * wa + row[j] * wb; out[e + 1] = a[e + 1] * wa + row[j + 1] * wb; out[e + 2] = a[e + 2] * wa + row[j + 2] * wb;
      continue;
    }
    convolveRowRgb(img, taps, y, row, 0);
    for (let j = 0, k = k0; j < rowLen; j++, k++) out[k] = a[k] * wa + row[j] * wb;
  }
  return true;
}

/**
 * Whether the taps are a 3x3 cross (up, left, centre, right, down) with the four arms' weights equal, and every sum of
 * weight x byte exact in float64 whatever the order: then the arms' bytes can be added as integers first. Each
 * product of a float32 weight and a byte is a multiple of q, the smallest weight's ulp / 2 (or finer), and every
 * partial sum is below 255 * sum(|w|) < 2^52 q, so all of them are exact doubles.
 */
function isExactCross(t: Taps): boolean {
  if (t.n !== 5 || t.dx[2] !== 0 || t.dy[2] !== 0) return false;
  const arms = [[0, -1], [-1, 0], [1, 0], [0, 1]];
  for (let k = 0, j = 0; k < 5; k++) {
    if (k === 2) continue;
    if (t.dx[k] !== arms[j][0] || t.dy[k] !== arms[j][1] || t.wt[k] !== t.wt[0]) return false;
    j++;
  }
  let q = Infinity, total = 0;
  for (let k = 0; k < 5; k++) {
    const c = Math.abs(t.wt[k]);
    if (!(c >= 2 ** -126)) return false; // a float32 subnormal: leave it to the tap loop
    q = Math.min(q, 2 ** (Math.floor(Math.log2(c)) - 24));
    total += c;
  }
  return 255 * total < 2 ** 52 * q;
}

/**
 * out[k] = a[k] wa + byte(centre w_c + (up + left + right + down) w_n) wb for k in [k0, k1): the interior of one row
 * of the cross's convolution blended; byte() rounds half to even and clamps, as a Uint8ClampedArray store does.
 */
function crossBlendRow(a: Uint8Array, k0: number, k1: number, rowLen: number, wc: number, wn: number, wa: number, wb: number, out: Uint8ClampedArray): void {
  for (let k = k0; k < k1; k++) {
    const v = a[k] * wc + (a[k - rowLen] + a[k - 3] + a[k + 3] + a[k + rowLen]) * wn;
    const b = v > 0 ? (v < 255 ? (v + 4503599627370496) - 4503599627370496 : 255) : 0;
    out[k] = a[k] * wa + b * wb;
  }
}

let convRow = new Uint8ClampedArray(0);

/** convolveRgb's non-zero taps (offsets and weights, in kernel order), or undefined where it goes to libvips. */
type Taps = { n: number; R: number; dx: Int32Array; dy: Int32Array; wt: Float32Array; off: Int32Array };
function sparseTaps(img: RgbImage, kernel: Float32Array, side: number): Taps | undefined {
  if (side % 2 !== 1 || kernel.length !== side * side) throw new Error(`convolveRgb: kernel must be side x side with odd side, got ${kernel.length} for ${side}`);
  const { width: w, height: h } = img;
  const R = (side - 1) >> 1;
  const idx: number[] = [];
  for (let k = 0; k < kernel.length; k++) if (kernel[k] !== 0) idx.push(k);
  if (w * h * 3 * idx.length > SHARP_THRESHOLD && side >= 3) return undefined;
  const dx = Int32Array.from(idx, (k) => (k % side) - R);
  const dy = Int32Array.from(idx, (k) => Math.floor(k / side) - R);
  const wt = Float32Array.from(idx, (k) => kernel[k]);
  const off = Int32Array.from(idx, (_, t) => (dy[t] * w + dx[t]) * 3);
  return { n: idx.length, R, dx, dy, wt, off };
}

/**
 * Row y of the sparse convolution (columns xa to xb - 1) into `o` from `o0`: per pixel and channel the float64 sum of
 * weight x byte over the taps in kernel order, rounded and clamped by the store.
 */
function convolveRowRgb(img: RgbImage, taps: Taps, y: number, o: Uint8ClampedArray, o0: number, xa = 0, xb = img.width): void {
  const { width: w, height: h, data } = img;
  const { n, R, dx, dy, wt, off } = taps;
  const inside = y >= R && y < h - R;
  const k0 = y * w * 3 - o0;
  for (let x = xa; x < xb; x++) {
    let r = 0, g = 0, b = 0;
    const k = (y * w + x) * 3;
    if (inside && x >= R && x < w - R) {
      for (let t = 0; t < n; t++) {
        const q = k + off[t], c = wt[t];
        r += c * data[q]; g += c * data[q + 1]; b += c * data[q + 2];
      }
    } else {
      for (let t = 0; t < n; t++) {
        const yy = Math.min(h - 1, Math.max(0, y + dy[t])), xx = Math.min(w - 1, Math.max(0, x + dx[t]));
        const q = (yy * w + xx) * 3, c = wt[t];
        r += c * data[q]; g += c * data[q + 1]; b += c * data[q + 2];
      }
    }
    o[k - k0] = r; o[k - k0 + 1] = g; o[k - k0 + 2] = b;
  }
}

/** Whether blurRgb takes its JS path (gaussianBlur) for this size and sigma, rather than libvips. */
function blurRgbInJs(w: number, h: number, sigma: number): boolean {
  // Multiply-adds of the JS path (gaussianBlur: direct below sigma 4, else down/upsampled by floor(sigma/2)).
  const n = w * h;
  const f = sigma < 4 ? 1 : Math.floor(sigma / 2);
  const tapsAt = (sg: number): number => 2 * Math.ceil(3 * sg) + 1;
  const jsOps = f === 1 ? n * 6 * tapsAt(sigma) : n * 12 + (n / (f * f)) * 6 * tapsAt(sigma / f);
  return jsOps <= SHARP_THRESHOLD || sigma < 0.3;
}

/**
 * out = addWeighted(img, wa, blurRgb(img, sigma), wb) (lens_blur's blend: clamp(round(a wa + b wb)) per byte) in one
 * pass where blurRgb works on a downsampled copy in JS (sigma >= 4): each upsampled value is rounded to its byte
 * (upsampleBilinear's float32 value, rounded half to even and clamped as a byte store does) and blended at once, with
 * no blurred image in between. Returns false, writing nothing, where blurRgb takes another path (the caller then
 * blurs and blends in two steps).
 */
export function blurBlendRgb(img: RgbImage, sigma: number, wa: number, wb: number, out: Uint8ClampedArray): boolean {
  const { width, height, data: a } = img;
  if (sigma < 4 || !blurRgbInJs(width, height, sigma)) return false;
  if (out.length !== a.length) throw new Error(`blurBlendRgb: out has ${out.length} elements, expected ${a.length}`);
  const f = Math.floor(sigma / 2);
  const { small, blurred: src } = coarseBlur(a, width, height, 3, sigma, f);
  const cw = small.width, chh = small.height;
  // upsampleBilinear's tables and row interpolation, unchanged.
  const x0 = new Int32Array(width), x1 = new Int32Array(width), fx = new Float32Array(width);
  for (let x = 0; x < width; x++) {
    const u = Math.min(cw - 1, Math.max(0, (x + 0.5) / f - 0.5));
    const i0 = Math.floor(u);
    x0[x] = i0 * 3; x1[x] = Math.min(cw - 1, i0 + 1) * 3; fx[x] = u - i0;
  }
  const rowLen = width * 3;
  let rowA = new Float32Array(rowLen), rowB = new Float32Array(rowLen);
  let haveA = -1, haveB = -1;
  const rowsOf = (y: number): number => Math.min(chh - 1, Math.max(0, (y + 0.5) / f - 0.5));
  for (let y = 0; y < height; y++) {
    const v = rowsOf(y);
    const y0 = Math.floor(v), y1 = Math.min(chh - 1, y0 + 1), fy = v - y0;
    if (haveA !== y0) {
      if (haveB === y0) { const t = rowA; rowA = rowB; rowB = t; haveB = -1; } else interpolateRow(src, y0 * cw * 3, x0, x1, fx, rowA);
      haveA = y0;
    }
    if (haveB !== y1) { interpolateRow(src, y1 * cw * 3, x0, x1, fx, rowB); haveB = y1; }
    // The next output rows between the same two coarse rows (each pair serves about f rows) are blended in the same
    // pass, up to four: their rowA and rowB reads and differences are shared (mid 1.28x, high 1.34x at 256 px).
    let m = 1;
    while (m < 4 && y + m < height && Math.floor(rowsOf(y + m)) === y0) m++;
    if (m === 4) blendRows4(a, y * rowLen, rowA, rowB, fy, rowsOf(y + 1) - y0, rowsOf(y + 2) - y0, rowsOf(y + 3) - y0, wa, wb, out);
    else if (m >= 2) { m = 2; blendRows2(a, y * rowLen, rowA, rowB, fy, rowsOf(y + 1) - y0, wa, wb, out); }
    else blendRow(a, y * rowLen, rowA, rowB, fy, wa, wb, out);
    y += m - 1;
  }
  return true;
}

/** blendRow for four consecutive output rows (from k0, a row apart) with the same rowA and rowB. */
function blendRows4(a: Uint8Array, k0: number, rowA: Float32Array, rowB: Float32Array, fy: number, fy2: number, fy3: number, fy4: number, wa: number, wb: number, out: Uint8ClampedArray): void {
  const n = rowA.length;
  for (let j = 0, k = k0; j < n; j++, k++) {
    const ra = rowA[j], d = rowB[j] - ra;
    const v = Math.fround(ra + d * fy), v2 = Math.fround(ra + d * fy2), v3 = Math.fround(ra + d * fy3), v4 = Math.fround(ra + d * fy4);
    const b = v > 0 ? (v < 255 ? (v + 4503599627370496) - 4503599627370496 : 255) : 0;
    const b2 = v2 > 0 ? (v2 < 255 ? (v2 + 4503599627370496) - 4503599627370496 : 255) : 0;
    const b3 = v3 > 0 ? (v3 < 255 ? (v3 + 4503599627370496) - 4503599627370496 : 255) : 0;
    const b4 = v4 > 0 ? (v4 < 255 ? (v4 + 4503599627370496) - 4503599627370496 : 255) : 0;
    out[k] = a[k] * wa + b * wb;
    out[k + n] = a[k + n] * wa + b2 * wb;
    out[k + 2 * n] = a[k + 2 * n] * wa + b3 * wb;
    out[k + 3 * n] = a[k + 3 * n] * wa + b4 * wb;
  }
}

/** blendRow for two consecutive output rows (from k0, and a row later) with the same rowA and rowB. */
function blendRows2(a: Uint8Array, k0: number, rowA: Float32Array, rowB: Float32Array, fy: number, fy2: number, wa: number, wb: number, out: Uint8ClampedArray): void {
  const n = rowA.length;
  for (let j = 0, k = k0; j < n; j++, k++) {
    const ra = rowA[j], d = rowB[j] - ra;
    const v = Math.fround(ra + d * fy), v2 = Math.fround(ra + d * fy2);
    const b = v > 0 ? (v < 255 ? (v + 4503599627370496) - 4503599627370496 : 255) : 0;
    const b2 = v2 > 0 ? (v2 < 255 ? (v2 + 4503599627370496) - 4503599627370496 : 255) : 0;
    out[k] = a[k] * wa + b * wb;
    out[k + n] = a[k + n] * wa + b2 * wb;
  }
}

/** One coarse RGB row interpolated to full width (upsampleBilinear's `fill`, 3 channels). */
function interpolateRow(src: Float32Array, r: number, x0: Int32Array, x1: Int32Array, fx: Float32Array, dst: Float32Array): void {
  for (let x = 0, o = 0; x < x0.length; x++, o += 3) {
    const p = r + x0[x], q = r + x1[x], t = fx[x];
    dst[o] = src[p] + (src[q] - src[p]) * t;
    dst[o + 1] = src[p + 1] + (src[q + 1] - src[p + 1]) * t;
    dst[o + 2] = src[p + 2] + (src[q + 2] - src[p + 2]) * t;
  }
}

/** out[k0 + j] = a[k0 + j] wa + byte(fround(rowA[j] + (rowB[j] - rowA[j]) fy)) wb, byte() as a Uint8ClampedArray store. */
function blendRow(a: Uint8Array, k0: number, rowA: Float32Array, rowB: Float32Array, fy: number, wa: number, wb: number, out: Uint8ClampedArray): void {
  for (let j = 0, k = k0; j < rowA.length; j++, k++) {
    const v = Math.fround(rowA[j] + (rowB[j] - rowA[j]) * fy);
    // Round half to even on [0, 255]: adding 2^52 leaves no fraction bits, so the sum is rounded (ties to even).
    const b = v > 0 ? (v < 255 ? (v + 4503599627370496) - 4503599627370496 : 255) : 0;
    out[k] = a[k] * wa + b * wb;
  }
}

async function viaSharpRaw(img: RgbImage, build: (p: Sharp) => Sharp): Promise<Uint8Array> {
  const { data, info } = await build(sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }))
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== img.width || info.height !== img.height) {
    throw new Error(`sharp returned ${info.width}x${info.height}x${info.channels}, expected ${img.width}x${img.height}x3`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Clamps and rounds a float value to 0..255. */
export function u8(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : (v + 0.5) | 0;
}

/**
 * Linear motion blur of an interleaved RGB image: the mean along a segment of `length` px through each
 * pixel at `angle` radians (a box along the line, fractional ends weighted). O(pixels) whatever the length:
 * the columns are shifted so the line runs along a row (linear interpolation across it), a running window
 * sums along rows, and the columns are shifted back. Edges replicate. Float output.
 */
export function lineBlur(source: ArrayLike<number>, width: number, height: number, length: number, angle: number): Float32Array {
  const out = new Float32Array(width * height * 3);
  lineBlurInto(source instanceof Uint8Array ? source : asFloat32(source), width, height, length, angle, out);
  return out;
}

/**
 * lineBlur into `out`: floats, or bytes rounded and clamped on store from the same float32 values (as
 * storing lineBlur's result into a Uint8ClampedArray). Mostly vertical lines are blurred as the transposed
 * image with the mirrored angle; the transpose is only a choice of strides here, no copy.
 */
export function lineBlurInto(
  src: Uint8Array | Float32Array, width: number, height: number, length: number, angle: number, out: Float32Array | Uint8ClampedArray,
): void {
  if (out.length !== width * height * 3) throw new Error(`lineBlurInto: out has ${out.length} elements, expected ${width * height * 3}`);
  let w = width, h = height, a = angle, sx = 3, sy = width * 3;
  // (Re-checked after each mirroring, as the angle computed for the transposed image decides again.)
  for (;;) {
    const cs = Math.cos(a), sn = Math.sin(a);
    if (!(Math.abs(cs) < Math.abs(sn))) break;
    [w, h, a, sx, sy] = [h, w, Math.atan2(cs, sn), sy, sx];
  }
  if (out instanceof Float32Array) lineRows(src, w, h, length, a, sx, sy, out);
  else lineRows(src, w, h, length, a, sx, sy, out);
}

/**
 * For each of the `rows` sheared rows, the first column met whose output reads it, walking the columns from the right
 * (`fromRight`: the last such column) or from the left (-1: no output reads the row). Output x reads rows
 * rowBase[x] .. rowBase[x] + height; rowBase is monotone and steps by at most 1, so the rows read by the columns
 * walked so far form one interval [have0, have1], and each column adds only its new rows.
 */
function firstReader(rowBase: Int32Array, height: number, rows: number, fromRight: boolean): Int32Array {
  const out = new Int32Array(rows).fill(-1);
  const width = rowBase.length;
  for (let i = 0, have0 = 1, have1 = 0; i < width; i++) {
    const x = fromRight ? width - 1 - i : i;
    const r0 = rowBase[x], r1 = r0 + height;
    if (have0 > have1) {
      for (let jj = r0; jj <= r1; jj++) out[jj] = x;
      have0 = r0; have1 = r1;
    } else {
      for (let jj = r0; jj <= r1 && jj < have0; jj++) out[jj] = x;
      for (let jj = Math.max(r0, have1 + 1); jj <= r1; jj++) out[jj] = x;
      have0 = Math.min(have0, r0); have1 = Math.max(have1, r1);
    }
  }
  return out;
}

/**
 * The blur of a w x h image whose pixel (x, y) channel c is at x * sx + y * sy + c in `src` and `out`, for
 * |cos| >= |sin|. The arithmetic (values, operations and their order) is that of the original row-major
 * implementation; J is computed one row at a time, B only over the columns whose outputs read the row (from column 0
 * where a running sum's start could change its rounding), and two rows of B are kept: outputs are written as they
 * become known.
 */
function lineRows(
  src: Uint8Array | Float32Array, width: number, height: number, length: number, angle: number, sx: number, sy: number,
  out: Float32Array | Uint8ClampedArray,
): void {
  const cs = Math.cos(angle), sn = Math.sin(angle);
  const m = sn / cs; // rows per column along the line, |m| <= 1
  const lx = Math.max(1, length * Math.abs(cs)); // extent along x
  const half = (lx - 1) / 2;
  const a = Math.floor(half);
  const e = half - a;
  const norm = 1 / (2 * a + 1 + 2 * e);
  const reach = a + 1;
  const W = width + 2 * reach; // sheared columns u = x - reach .. width + reach - 1
  const span = Math.abs(m) * (width - 1 + 2 * reach);
  const jmin = -Math.ceil(Math.max(0, m) * (width - 1 + reach)) - 1;
  const H = height + Math.ceil(span) + 3;
  const rowLen = width * 3;
  // Sheared rows each output column x reads: [rowBase[x], rowBase[x] + height].
  const rowBase = new Int32Array(width), rowF = new Float32Array(width);
  for (let x = 0; x < width; x++) {
    const r = -jmin - m * x;
    rowBase[x] = Math.floor(r);
    rowF[x] = r - rowBase[x];
  }
  // The last and the first column x whose output reads sheared row jj (-1: none).
  const lastX = firstReader(rowBase, height, H, true);
  const firstX = firstReader(rowBase, height, H, false);
  // Rows of J column ui that any output reads (outputs x within `reach` of it): the rest stays 0.
  const lo = new Int32Array(W), hi = new Int32Array(W);
  for (let ui = 0; ui < W; ui++) {
    const xa = Math.min(width - 1, Math.max(0, ui - 2 * reach)), xb = Math.min(width - 1, Math.max(0, ui));
    lo[ui] = Math.min(rowBase[xa], rowBase[xb]);
    hi[ui] = Math.max(rowBase[xa], rowBase[xb]) + height;
  }
  const colOf = new Int32Array(W), baseOf = new Int32Array(W), fOf = new Float32Array(W);
  for (let ui = 0; ui < W; ui++) {
    const u = ui - reach;
    colOf[ui] = (u < 0 ? 0 : u >= width ? width - 1 : u) * sx;
    const shift = jmin + m * u;
    baseOf[ui] = Math.floor(shift);
    fOf[ui] = shift - baseOf[ui];
  }
  let minBase = Infinity, maxBase = -Infinity;
  for (let ui = 0; ui < W; ui++) { minBase = Math.min(minBase, baseOf[ui]); maxBase = Math.max(maxBase, baseOf[ui]); }
  // Whether a row's running sum may start at the first column that reads the row (`firstX`) instead of column 0. It
  // may when every sum it takes is exact, so that its value does not depend on where it started: with byte input
  // each J value is s0 (1 - f) + s1 f rounded to float32, so 0 or >= min(f, 1 - f) over the non-zero f; if that is
  // >= 2^-17, every J is a multiple of 2^-40 (float32 ulp) at most 255, and a window of 2a + 1 <= 31 of them sums
  // below 2^13: 53 bits, exact. Otherwise (a float input, a long window, a shift within 2^-17 of a whole row: rare)
  // every row starts at column 0 as before.
  let skip = src instanceof Uint8Array && 2 * a + 1 <= 31;
  for (let ui = 0; ui < W && skip; ui++) { const f = fOf[ui]; if (f !== 0 && (f < 2 ** -17 || 1 - f < 2 ** -17)) skip = false; }
  if (skip && src instanceof Uint8Array && out instanceof Uint8ClampedArray) {
    // Bytes to bytes with exact running sums (motion_blur high): the same values from WebAssembly (round 18).
    lineRowsBytes(src, out, { width, height, sx, sy, a, e, norm, reach, W, H, minBase, maxBase, rowBase, rowF, lastX, firstX, lo, hi, colOf, baseOf, fOf });
    return;
  }
  // J(u, j) = I(u, j + jmin + m u): per column a constant fractional shift. One row at a time.
  const J = new Float32Array(W * 3);
  // B(x, j) = sum of J(u, j) for u in [x - a, x + a], plus e times the two next ones. Output (x, y) reads B rows
  // y + rowBase[x] and the next, so each output is written as soon as its second row exists: only two rows of B are
  // kept (prev = row jj - 1, cur = row jj). Every element an output reads is written first (row jj up to column
  // lastX[jj]), so the rows are buffers reused across calls, not zeroed. (A whole B image, ~1.6 MiB at 45 degrees,
  // read back column by column cost 5 ns an output in cache misses.)
  if (lineScratch.length < 2 * rowLen) lineScratch = new Float32Array(2 * rowLen);
  let prevB = lineScratch.subarray(0, rowLen), B = lineScratch.subarray(rowLen, 2 * rowLen);
  for (let jj = 0; jj < H; jj++) {
    const xe = lastX[jj];
    if (xe < 0) continue; // no output reads this row of B
    // B from column xs on; J columns the running sum reads from column xs to column xe of B.
    const xs = skip ? firstX[jj] : 0;
    const us = xs + reach - a - 1, ue = Math.min(W - 1, xe + reach + a + 1);
    if (jj + minBase >= 0 && jj + maxBase + 1 <= height - 1) {
      // Every column's two source rows are inside the image: no clamping.
      for (let ui = us, o = us * 3; ui <= ue; ui++, o += 3) {
        const p = (jj + baseOf[ui]) * sy + colOf[ui], q = p + sy, f = fOf[ui];
        J[o] = src[p] + (src[q] - src[p]) * f;
        J[o + 1] = src[p + 1] + (src[q + 1] - src[p + 1]) * f;
        J[o + 2] = src[p + 2] + (src[q + 2] - src[p + 2]) * f;
      }
    } else {
      for (let ui = us, o = us * 3; ui <= ue; ui++, o += 3) {
        if (jj < lo[ui] || jj > hi[ui]) { J[o] = 0; J[o + 1] = 0; J[o + 2] = 0; continue; }
        const cu = colOf[ui], f = fOf[ui];
        let y0 = jj + baseOf[ui], y1 = y0 + 1;
        y0 = y0 < 0 ? 0 : y0 >= height ? height - 1 : y0;
        y1 = y1 < 0 ? 0 : y1 >= height ? height - 1 : y1;
        const p = y0 * sy + cu, q = y1 * sy + cu;
        J[o] = src[p] + (src[q] - src[p]) * f;
        J[o + 1] = src[p + 1] + (src[q + 1] - src[p + 1]) * f;
        J[o + 2] = src[p + 2] + (src[q + 2] - src[p + 2]) * f;
      }
    }
    // The three channels' running sums side by side (each in the same order as a per-channel pass).
    let acc0 = 0, acc1 = 0, acc2 = 0;
    for (let u = xs + reach - a, q = u * 3; u <= xs + reach + a; u++, q += 3) { acc0 += J[q]; acc1 += J[q + 1]; acc2 += J[q + 2]; }
    for (let x = xs, b = xs * 3, l = us * 3, r = (xs + reach + a + 1) * 3; x <= xe; x++, b += 3, l += 3, r += 3) {
      B[b] = (acc0 + e * (J[l] + J[r])) * norm;
      B[b + 1] = (acc1 + e * (J[l + 1] + J[r + 1])) * norm;
      B[b + 2] = (acc2 + e * (J[l + 2] + J[r + 2])) * norm;
      if (x + 1 < width) { acc0 += J[r] - J[l + 3]; acc1 += J[r + 1] - J[l + 4]; acc2 += J[r + 2] - J[l + 5]; }
    }
    // out(x, y) = B(x, y - jmin - m x), again a constant fractional shift per column: the outputs whose second row is
    // jj (y = jj - 1 - rowBase[x]). Math.fround: the float32 rounding of a Float32Array result happens before a byte
    // store as well.
    for (let x = xs, p = xs * 3; x <= xe; x++, p += 3) {
      const y = jj - 1 - rowBase[x];
      if (y < 0 || y >= height) continue;
      const f = rowF[x], o = y * sy + x * sx;
      out[o] = Math.fround(prevB[p] + (B[p] - prevB[p]) * f);
      out[o + 1] = Math.fround(prevB[p + 1] + (B[p + 1] - prevB[p + 1]) * f);
      out[o + 2] = Math.fround(prevB[p + 2] + (B[p + 2] - prevB[p + 2]) * f);
    }
    const t = prevB; prevB = B; B = t;
  }
}
