// Typed-array image filters used by the corruptions: separable convolution, small 2-D stencils, bilinear
// remapping, and Gaussian blur through sharp (libvips). Planes are Float32Array unless noted; images are
// interleaved RGB (see image.ts). Borders follow OpenCV's default (BORDER_REFLECT_101: ...cba|abcd|dcb...).
import sharp from 'sharp';
import type { RgbImage } from './image.ts';

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
  // Horizontal pass: reflected taps near the borders, direct indexing inside.
  for (let y = 0; y < height; y++) {
    const row = y * rowLen;
    for (let x = 0; x < width; x++) {
      const inside = x >= rx && x < width - rx;
      for (let c = 0; c < channels; c++) {
        let acc = 0;
        if (inside) {
          let k0 = row + (x - rx) * channels + c;
          for (let k = 0; k < nk; k++, k0 += channels) acc += kx[k] * src[k0];
        } else {
          for (let k = 0; k < nk; k++) acc += kx[k] * src[row + reflect101(x + k - rx, width) * channels + c];
        }
        tmp[row + x * channels + c] = acc;
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

/** Area-average downsampling by an integer factor (partial blocks at the right and bottom edges). */
export function downsampleArea(
  source: ArrayLike<number>, width: number, height: number, channels: number, f: number,
): { data: Float32Array; width: number; height: number } {
  const src = asFloat32(source);
  const cw = Math.ceil(width / f), chh = Math.ceil(height / f);
  const out = new Float32Array(cw * chh * channels);
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

/** Bilinear upsampling of a grid made by downsampleArea(…, f) back to width x height. */
export function upsampleBilinear(
  src: Float32Array, cw: number, chh: number, channels: number, f: number, width: number, height: number,
): Float32Array {
  const out = new Float32Array(width * height * channels);
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
    for (let j = 0; j < rowLen; j++) out[o + j] = rowA[j] + (rowB[j] - rowA[j]) * fy;
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
): Float32Array {
  if (sigma <= 0) return Float32Array.from(src);
  const f = sigma < 4 ? 1 : Math.floor(sigma / 2);
  if (f === 1) {
    const k = gaussianKernel1D(2 * Math.ceil(3 * sigma) + 1, sigma);
    return convolveSeparable(src, width, height, channels, k, k);
  }
  const small = downsampleArea(src, width, height, channels, f);
  const rest = sigma * sigma - (f * f - 1) / 12 - (f * f) / 6;
  const sc = Math.sqrt(Math.max(rest, 0.25 * f * f)) / f;
  const k = gaussianKernel1D(2 * Math.ceil(3 * sc) + 1, sc);
  const blurred = convolveSeparable(small.data, small.width, small.height, channels, k, k);
  return upsampleBilinear(blurred, small.width, small.height, channels, f, width, height);
}

/**
 * Box filter (mean over a (2rx+1) x (2ry+1) window, reflect-101 borders), rows then columns, with running
 * sums: O(1) per pixel whatever the radius.
 */
export function boxBlur(
  src: ArrayLike<number>, width: number, height: number, channels: number, rx: number, ry: number,
): Float32Array {
  const f = asFloat32(src);
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
      for (let c = 0; c < channels; c++) pad[i * channels + c] = f[sx + c];
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

/** `src` as a Float32Array (itself if it already is one), so the hot loops see one element type. */
export function asFloat32(src: ArrayLike<number>): Float32Array {
  return src instanceof Float32Array ? src : Float32Array.from(src);
}

/**
 * Gaussian blur with libvips (sharp) of an interleaved 8-bit buffer with 1 or 3 channels; `sigma` in pixels
 * (values under 0.3 are raised to 0.3, sharp's minimum). Returns 8-bit data of the same layout.
 */
export async function gaussianBlurSharp(
  data: Uint8Array, width: number, height: number, channels: 1 | 3, sigma: number,
): Promise<Uint8Array> {
  const { data: out, info } = await sharp(data, { raw: { width, height, channels } })
    .blur(Math.min(1000, Math.max(0.3, sigma)))
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels === channels) return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  // sharp may hand a single band back as 3: keep the first.
  const r = new Uint8Array(width * height * channels);
  for (let i = 0; i < width * height; i++) {
    for (let c = 0; c < channels; c++) r[i * channels + c] = out[i * info.channels + c];
  }
  return r;
}

/** Clamps and rounds a float value to 0..255. */
export function u8(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : (v + 0.5) | 0;
}

/** Bilinear sample of channel c at (x, y), coordinates clamped to the image. */
export function sampleBilinear(img: RgbImage, x: number, y: number, c: number): number {
  const { width, height, data } = img;
  x = x < 0 ? 0 : x > width - 1 ? width - 1 : x;
  y = y < 0 ? 0 : y > height - 1 ? height - 1 : y;
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const x1 = x0 + 1 < width ? x0 + 1 : x0;
  const y1 = y0 + 1 < height ? y0 + 1 : y0;
  const fx = x - x0;
  const fy = y - y0;
  const a = data[(y0 * width + x0) * 3 + c];
  const b = data[(y0 * width + x1) * 3 + c];
  const d = data[(y1 * width + x0) * 3 + c];
  const e = data[(y1 * width + x1) * 3 + c];
  return (a + (b - a) * fx) * (1 - fy) + (d + (e - d) * fx) * fy;
}

/** Swaps rows and columns of an interleaved 3-channel image. */
function transpose3(src: ArrayLike<number>, width: number, height: number): Float32Array {
  const out = new Float32Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const a = (y * width + x) * 3, b = (x * height + y) * 3;
      out[b] = src[a]; out[b + 1] = src[a + 1]; out[b + 2] = src[a + 2];
    }
  }
  return out;
}

/**
 * Linear motion blur of an interleaved RGB image: the mean along a line segment of `length` px through each
 * pixel at `angle` radians (a box along the line, fractional ends weighted). O(pixels) whatever the length:
 * the image is sheared so the line runs along a row (linear interpolation across the line), summed with a
 * running window, and sheared back. Edges replicate. Float output.
 */
export function lineBlur(src: ArrayLike<number>, width: number, height: number, length: number, angle: number): Float32Array {
  const cs = Math.cos(angle), sn = Math.sin(angle);
  if (Math.abs(cs) < Math.abs(sn)) {
    // Mostly vertical: blur the transposed image with the mirrored angle.
    const t = lineBlur(transpose3(src, width, height), height, width, length, Math.atan2(cs, sn));
    return transpose3(t, height, width);
  }
  const f = asFloat32(src);
  const m = sn / cs; // rows per column along the line, |m| <= 1
  const lx = Math.max(1, length * Math.abs(cs)); // extent along x
  const half = (lx - 1) / 2;
  const a = Math.floor(half);
  const e = half - a;
  const norm = 1 / (2 * a + 1 + 2 * e);
  const reach = a + 1;
  const W = width + 2 * reach; // sheared image columns u = x + t, x in [-reach, width + reach)
  const jmin = Math.floor(Math.min(0, -m * (width - 1 + reach), m * reach)) - 1;
  const jmax = Math.ceil(height - 1 + Math.max(0, -m * (width - 1 + reach), m * reach)) + 1;
  const H = jmax - jmin + 1;
  // J(u, j) = I(u, j + m u), u and the row clamped to the image.
  const J = new Float32Array(W * H * 3);
  for (let jj = 0; jj < H; jj++) {
    for (let ui = 0; ui < W; ui++) {
      const u = ui - reach;
      const cu = u < 0 ? 0 : u >= width ? width - 1 : u;
      let yy = jj + jmin + m * u;
      yy = yy < 0 ? 0 : yy > height - 1 ? height - 1 : yy;
      const y0 = Math.floor(yy), y1 = y0 + 1 < height ? y0 + 1 : y0, fy = yy - y0;
      const p = (y0 * width + cu) * 3, q = (y1 * width + cu) * 3, o = (jj * W + ui) * 3;
      J[o] = f[p] + (f[q] - f[p]) * fy;
      J[o + 1] = f[p + 1] + (f[q + 1] - f[p + 1]) * fy;
      J[o + 2] = f[p + 2] + (f[q + 2] - f[p + 2]) * fy;
    }
  }
  // B(x, j) = sum over u in [x - a, x + a] of J(u, j) + e * (J(x - a - 1, j) + J(x + a + 1, j)).
  const B = new Float32Array(width * H * 3);
  for (let jj = 0; jj < H; jj++) {
    const row = jj * W * 3;
    for (let c = 0; c < 3; c++) {
      let acc = 0;
      for (let u = reach - a; u <= reach + a; u++) acc += J[row + u * 3 + c];
      for (let x = 0; x < width; x++) {
        const ux = x + reach;
        B[(jj * width + x) * 3 + c] = (acc + e * (J[row + (ux - a - 1) * 3 + c] + J[row + (ux + a + 1) * 3 + c])) * norm;
        if (x + 1 < width) acc += J[row + (ux + a + 1) * 3 + c] - J[row + (ux - a) * 3 + c];
      }
    }
  }
  // out(x, y) = B(x, y - m x), interpolated between sheared rows.
  const out = new Float32Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const r = y - m * x - jmin;
      const j0 = Math.floor(r), fr = r - j0;
      const p = (j0 * width + x) * 3, q = ((j0 + 1) * width + x) * 3, o = (y * width + x) * 3;
      out[o] = B[p] + (B[q] - B[p]) * fr;
      out[o + 1] = B[p + 1] + (B[q + 1] - B[p + 1]) * fr;
      out[o + 2] = B[p + 2] + (B[q + 2] - B[p + 2]) * fr;
    }
  }
  return out;
}
