// The 16 corruption types of the Robust-R1 degradation pipeline (jqtangust/Robust-R1,
// add_degradation/add_degradation.py), re-implemented over 8-bit RGB with sharp and typed arrays.
//
// Each type takes an intensity i in [0, 1] (named levels low 0.23, mid 0.45, high 0.9) and a seed; the same
// (image, type, i, seed) always gives the same bytes. i = 0 returns the image unchanged. Parameters follow the
// pipeline's formulas; those measured in pixels (blur radii, block sizes, shape sizes, line spacing ...) are
// given at a reference resolution (`refSize`, default 256 px on the shorter side) and scaled with the image,
// so a 32x32 training image is corrupted like a 256x256 one seen from further away. Random elements are
// drawn from per-element streams in a fixed order, so for one seed a higher intensity adds to (never
// reshuffles) what a lower one drew: the damage grows with the level. docs/data.md has the table.
import { z } from 'zod';
import sharp from 'sharp';
import { cloneImage, newImage, assertRgbImage, sharpOf, type RgbImage } from './image.ts';
import { hashSeed, rng, addStandardNormalFast, type Rng } from './random.ts';
import { blockMeansRgb, blurBlendRgb, blurRgb, boxBlurRgbBytes, boxSumsRgbRows, convolveBlendRgb, convolveRgb, KEEP_SCRATCH_ELEMENTS, gaussianBlur, lineBlurInto, u8, upsampleBilinear } from './filters.ts';
import { fillCircle, fillEllipse, strokeLine, drawText, textWidth, type Canvas } from './draw.ts';
import { meanShiftModes } from './mean-shift-modes.ts';

export const FAMILIES = {
  capture: ['lens_blur', 'lens_flare', 'motion_blur', 'dirty_lens', 'hsv_saturation'],
  transmission: ['jpeg_compression', 'block_exchange', 'mean_shift', 'scan_lines'],
  environment: ['dark_illumination', 'atmospheric_turbulence', 'gaussian_noise', 'color_diffusion'],
  post_processing: ['sharpness_change', 'graffiti', 'watermark_damage'],
} as const;

export type CorruptionFamily = keyof typeof FAMILIES;
export type CorruptionType = (typeof FAMILIES)[CorruptionFamily][number];

export const FAMILY_NAMES = Object.keys(FAMILIES) as readonly CorruptionFamily[];
export const CORRUPTION_TYPES: readonly CorruptionType[] = Object.freeze(
  FAMILY_NAMES.flatMap((f) => [...FAMILIES[f]]),
);

export const LEVELS = Object.freeze({ low: 0.23, mid: 0.45, high: 0.9 } as const);
export type LevelName = keyof typeof LEVELS;
export const LEVEL_NAMES = Object.keys(LEVELS) as readonly LevelName[];

/** Default reference resolution (shorter side, px) at which the pipeline's pixel parameters apply as written. */
export const DEFAULT_REF_SIZE = 256;

const FAMILY_OF = new Map<CorruptionType, CorruptionFamily>(
  FAMILY_NAMES.flatMap((f) => FAMILIES[f].map((t) => [t, f] as [CorruptionType, CorruptionFamily])),
);

export function familyOf(type: CorruptionType): CorruptionFamily {
  const f = FAMILY_OF.get(type);
  if (!f) throw new Error(unknownTypeMessage(String(type)));
  return f;
}

export function isCorruptionType(t: unknown): t is CorruptionType {
  return typeof t === 'string' && FAMILY_OF.has(t as CorruptionType);
}

function unknownTypeMessage(t: string): string {
  return `unknown corruption type '${t}'; valid types: ${CORRUPTION_TYPES.join(', ')}`;
}

/** Checks a type name, throwing an error that lists the valid ones. */
export function parseCorruptionType(t: string): CorruptionType {
  if (!isCorruptionType(t)) throw new Error(unknownTypeMessage(t));
  return t;
}

/** A level name (low/mid/high), or a number (also as a string) in [0, 1]; throws otherwise. */
export function parseLevel(level: number | string): number {
  let v: number;
  if (typeof level === 'string') {
    if (level in LEVELS) return LEVELS[level as LevelName];
    v = level.trim() === '' ? NaN : Number(level);
    if (Number.isNaN(v)) {
      throw new Error(`corruption level '${level}' is neither a number in [0, 1] nor one of ${LEVEL_NAMES.map((n) => `${n} (${LEVELS[n]})`).join(', ')}`);
    }
  } else v = level;
  if (!(v >= 0 && v <= 1)) throw new Error(`corruption intensity must be in [0, 1], got ${level}`);
  return v;
}

export interface CorruptOptions {
  /** Shorter side (px) at which pixel-sized parameters take the pipeline's values (default 256). */
  refSize?: number;
}

/** Context handed to each corruption: intensity, scale to the reference size, and seeded streams. */
interface Ctx {
  i: number;
  /** min(width, height) / refSize. */
  s: number;
  /** Independent stream for a named group of random elements. */
  stream(name: string): Rng;
  /** The seed of stream(name) (rng(seedOf(name)) is that stream). */
  seedOf(name: string): number;
}

type Impl = (img: RgbImage, c: Ctx) => RgbImage | Promise<RgbImage>;

/**
 * Applies corruption `type` at intensity `level` (number in [0, 1] or 'low' | 'mid' | 'high') with `seed`.
 * Returns a new image of the same size; the input is not modified.
 */
export async function corrupt(
  img: RgbImage, type: CorruptionType | string, level: number | LevelName | string, seed: number,
  opts: CorruptOptions = {},
): Promise<RgbImage> {
  assertRgbImage(img);
  const t = parseCorruptionType(type);
  const i = parseLevel(level);
  if (!Number.isFinite(seed)) throw new Error(`corrupt: seed must be a finite number, got ${seed}`);
  const refSize = opts.refSize ?? DEFAULT_REF_SIZE;
  if (!(refSize > 0)) throw new Error(`corrupt: refSize must be positive, got ${refSize}`);
  if (i === 0) return cloneImage(img);
  const base = hashSeed(seed, t);
  const ctx: Ctx = {
    i,
    s: Math.min(img.width, img.height) / refSize,
    stream: (name) => rng(hashSeed(base, name)),
    seedOf: (name) => hashSeed(base, name),
  };
  return IMPLS[t](img, ctx);
}

// ---- helpers ---------------------------------------------------------------------------------------------

/** out = clamp(round(a * wa + b * wb)) per byte (OpenCV addWeighted). */
function addWeighted(a: Uint8Array, wa: number, b: Uint8Array | Float32Array, wb: number, out: Uint8Array): Uint8Array {
  // One loop per element type of b, so each stays monomorphic (the hot lens_blur path is bytes + bytes).
  if (b instanceof Uint8Array) addWeightedBytes(a, wa, b, wb, clamped(out));
  else addWeightedFloat(a, wa, b, wb, clamped(out));
  return out;
}

function addWeightedBytes(a: Uint8Array, wa: number, b: Uint8Array, wb: number, o: Uint8ClampedArray): void {
  for (let k = 0; k < o.length; k++) o[k] = a[k] * wa + b[k] * wb;
}

function addWeightedFloat(a: Uint8Array, wa: number, b: Float32Array, wb: number, o: Uint8ClampedArray): void {
  for (let k = 0; k < o.length; k++) o[k] = a[k] * wa + b[k] * wb;
}

/** A view that rounds (half to even, as OpenCV's saturate_cast) and clamps to 0..255 on store. */
function clamped(a: Uint8Array): Uint8ClampedArray {
  return new Uint8ClampedArray(a.buffer, a.byteOffset, a.length);
}

function floatCanvas(w: number, h: number, channels: 1 | 3): Canvas & { data: Float32Array } {
  return { width: w, height: h, channels, data: new Float32Array(w * h * channels) };
}

// ---- the 16 types ----------------------------------------------------------------------------------------

/** Gaussian blur (sigma 20i) blended as img*(1-0.7i) + blur*0.9i (so it also brightens a little). */
const lensBlur: Impl = async (img, { i, s }) => {
  const sigma = 20 * i * s, wa = 1 - 0.7 * i, wb = 0.9 * i;
  const out = new Uint8Array(img.data.length);
  // Blur and blend in one pass where the blur is JS's downsampled path (the same bytes), else in two steps.
  if (blurBlendRgb(img, sigma, wa, wb, clamped(out))) return { width: img.width, height: img.height, data: out };
  return { width: img.width, height: img.height, data: addWeighted(img.data, wa, await blurRgb(img, sigma), wb, out) };
};

/**
 * 3 + 30i bright discs (r 10..50 px) with streaks (30..150 px long, 2 px wide), added with weight 0.9i.
 * (The pipeline then softens the flare layer with a 3x3 Gaussian; anti-aliased edges stand in for that.)
 */
const lensFlare: Impl = (img, { i, s, stream }) => {
  const { width: w, height: h } = img;
  const layer = floatCanvas(w, h, 1);
  const r = stream('flares');
  const n = 3 + Math.floor(30 * i);
  for (let k = 0; k < n; k++) {
    const x = r.int(0, w); // Python's randint(0, w): both ends inclusive
    const y = r.int(0, h);
    const radius = r.int(10, 50) * s;
    const angle = r.uniform(0, 2 * Math.PI);
    const length = r.int(30, 150) * s;
    fillCircle(layer, x, y, Math.max(0.5, radius), { color: 1 });
    strokeLine(layer, x, y, x + length * Math.cos(angle), y + length * Math.sin(angle), Math.max(1, 2 * s), { color: 1 });
  }
  const out = newImage(w, h);
  const o = clamped(out.data);
  const d = img.data, m = layer.data;
  const g = 0.9 * i; // colour (255, 255, 235) in OpenCV's BGR is (235, 255, 255) in RGB
  for (let p = 0, q = 0; p < w * h; p++, q += 3) {
    const a = m[p] * g;
    o[q] = d[q] + 235 * a;
    o[q + 1] = d[q + 1] + 255 * a;
    o[q + 2] = d[q + 2] + 255 * a;
  }
  return out;
};

/**
 * Linear motion blur: the mean along a line of length max(5, 30i) px at a random angle (the pipeline's
 * rotated np.diag(ones(len)) kernel). Short lines on large images go to libvips as a sparse kernel; otherwise
 * lineBlur does it in O(pixels) whatever the length.
 */
const motionBlur: Impl = async (img, { i, s, stream }) => {
  const angle = stream('angle').uniform(0, 2 * Math.PI);
  const len = Math.max(2, Math.max(5, Math.floor(30 * i)) * s);
  if (img.width * img.height >= 128 * 128 && len <= 16) {
    const { kernel, side } = lineKernel(len, angle);
    return { width: img.width, height: img.height, data: await convolveRgb(img, kernel, side) };
  }
  const out = newImage(img.width, img.height);
  lineBlurInto(img.data, img.width, img.height, len, angle, clamped(out.data));
  return out;
};

/**
 * A normalised line kernel: points every 0.25 px along a segment of `len` px through the centre, each
 * splatted bilinearly (as OpenCV's rotated np.diag(ones(len)) in the pipeline).
 */
function lineKernel(len: number, angle: number): { kernel: Float32Array; side: number } {
  const R = Math.ceil(len / 2) + 1;
  const side = 2 * R + 1;
  const kernel = new Float32Array(side * side);
  const half = (len - 1) / 2;
  const steps = Math.max(2, Math.ceil(len * 4));
  const cs = Math.cos(angle), sn = Math.sin(angle);
  for (let k = 0; k <= steps; k++) {
    const t = -half + (2 * half * k) / steps;
    const px = t * cs + R, py = t * sn + R;
    const x0 = Math.floor(px), y0 = Math.floor(py);
    const fx = px - x0, fy = py - y0;
    kernel[y0 * side + x0] += (1 - fx) * (1 - fy);
    kernel[y0 * side + x0 + 1] += fx * (1 - fy);
    kernel[(y0 + 1) * side + x0] += (1 - fx) * fy;
    kernel[(y0 + 1) * side + x0 + 1] += fx * fy;
  }
  let total = 0;
  for (const v of kernel) total += v;
  for (let k = 0; k < kernel.length; k++) kernel[k] = kernel[k] > 1e-4 * total ? kernel[k] / total : 0;
  return { kernel, side };
}

/**
 * Dirt: blotches (10i ellipses 150..300 x 100..200 px above i 0.1, 300i spots r 4..20 px, 5i double drops
 * above i 0.5) blurred with sigma 30 px, blended as img*(1-0.7i) + dirt*0.8i. The dirt layer is drawn at a
 * reduced resolution (it is blurred by 30 px anyway) and upsampled.
 */
const dirtyLens: Impl = (img, { i, s, stream }) => {
  const { width: w, height: h } = img;
  const f = Math.max(1, Math.floor(4 * s)); // coarse factor: the smallest spot stays >= 1 coarse px
  const cw = Math.ceil(w / f), chh = Math.ceil(h / f);
  const dirt: Canvas & { data: Float32Array } = { width: cw, height: chh, channels: 1, data: new Float32Array(cw * chh) };
  const z = s / f; // reference px -> coarse px
  if (i > 0.1) {
    const r = stream('smudges');
    for (let k = 0, n = Math.floor(10 * i); k < n; k++) {
      const cx = r.int(0, w) / f, cy = r.int(0, h) / f;
      const ax = r.int(150, 300) * z, ay = r.int(100, 200) * z;
      const ang = (r.int(0, 180) * Math.PI) / 180;
      fillEllipse(dirt, cx, cy, ax, ay, ang, { color: 50 });
    }
  }
  const spots = stream('spots');
  for (let k = 0, n = Math.floor(300 * i); k < n; k++) {
    const x = spots.int(0, w) / f, y = spots.int(0, h) / f;
    const rad = spots.int(4, 20) * z;
    const v = spots.int(50, 100);
    fillCircle(dirt, x, y, Math.max(0.5, rad), { color: v });
  }
  if (i > 0.5) {
    const r = stream('drops');
    for (let k = 0, n = Math.floor(5 * i); k < n; k++) {
      const x = r.int(0, w) / f, y = r.int(0, h) / f;
      const r1 = r.int(20, 50) * z, r2 = r.int(10, 30) * z;
      fillCircle(dirt, x, y, r1, { color: 80 });
      fillCircle(dirt, x, y, r2, { color: 120 });
    }
  }
  const blurred = gaussianBlur(dirt.data, cw, chh, 1, (30 * s) / f);
  const full = f === 1 ? blurred : upsampleBilinear(blurred, cw, chh, 1, f, w, h);
  const out = newImage(w, h);
  const o = clamped(out.data), src = img.data;
  const a = 1 - 0.7 * i, b = 0.8 * i;
  for (let p = 0, q = 0; p < w * h; p++, q += 3) {
    const d = Math.floor(full[p]) * b;
    o[q] = src[q] * a + d;
    o[q + 1] = src[q + 1] * a + d;
    o[q + 2] = src[q + 2] * a + d;
  }
  return out;
};

/** HSV saturation scaled by (1 - i), value kept: each channel moves towards max(r, g, b). */
const hsvSaturation: Impl = (img, { i }) => {
  const out = newImage(img.width, img.height);
  const d = img.data, o = clamped(out.data);
  const k = 1 - i;
  for (let q = 0; q < d.length; q += 3) {
    const r = d[q], g = d[q + 1], b = d[q + 2];
    const v = r > g ? (r > b ? r : b) : g > b ? g : b;
    o[q] = v - k * (v - r);
    o[q + 1] = v - k * (v - g);
    o[q + 2] = v - k * (v - b);
  }
  return out;
};

/** JPEG round trip at quality 100 - 95i (4:2:0 chroma), via sharp. */
const jpegCompression: Impl = async (img, { i }) => {
  const quality = Math.max(5, Math.min(100, Math.floor(100 - 95 * i)));
  // optimiseCoding (sharp's default) is a second pass that computes optimal Huffman tables: a smaller file, the
  // same coefficients, so the same decoded pixels. The file is thrown away, so the pass is skipped (~15% of the call).
  const jpeg = await sharpOf(img).jpeg({ quality, chromaSubsampling: '4:2:0', optimiseCoding: false }).toBuffer();
  // Our own baseline sRGB JPEG (3 channels, no EXIF): decode it straight to raw bytes. decodeImage would add a
  // header read (a second libvips call) and orientation/alpha/colour steps that are no-ops here.
  const { data, info } = await sharp(jpeg).raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== img.width || info.height !== img.height) {
    throw new Error(`jpeg_compression: decoded ${info.width}x${info.height}x${info.channels}, expected ${img.width}x${img.height}x3`);
  }
  return { width: img.width, height: img.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
};

/** 35i swaps of square blocks (side min(32, 5 + 30i) px) at random places. */
const blockExchange: Impl = (img, { i, s, stream }) => {
  const { width: w, height: h } = img;
  const out = cloneImage(img);
  const bs = Math.max(2, Math.round(Math.min(32, Math.floor(5 + 30 * i)) * s));
  const nx = Math.floor(w / bs), ny = Math.floor(h / bs);
  if (nx < 1 || ny < 1) return out;
  const r = stream('swaps');
  const tmp = new Uint8Array(bs * 3);
  const d = out.data;
  for (let k = 0, n = Math.floor(35 * i); k < n; k++) {
    const y1 = Math.floor(r.float() * ny) * bs, x1 = Math.floor(r.float() * nx) * bs;
    const y2 = Math.floor(r.float() * ny) * bs, x2 = Math.floor(r.float() * nx) * bs;
    for (let row = 0; row < bs; row++) {
      const a = ((y1 + row) * w + x1) * 3, b = ((y2 + row) * w + x2) * 3;
      tmp.set(d.subarray(a, a + bs * 3));
      d.copyWithin(a, b, b + bs * 3);
      d.set(tmp, b);
    }
  }
  return out;
};

/**
 * Mean-shift filtering (OpenCV pyrMeanShiftFiltering) with spatial radius 40i px and colour radius 40i:
 * each pixel climbs to the mode of its joint space-colour neighbourhood (at most 5 steps, stop when it moves
 * by <= 1). Like OpenCV's pyramid, large radii run on a coarser level (factor up to 4, window sampled on a
 * grid of at most 7x7 points); each full-resolution pixel then takes, among the modes of the 2x2 nearest
 * coarse pixels, the one closest to its own colour, which keeps region edges sharp.
 */
const meanShift: Impl = (img, { i, s }) => {
  const { width: w, height: h } = img;
  const sp = Math.max(1, Math.round(Math.floor(40 * i) * s));
  const sr = Math.floor(40 * i);
  if (sr < 1) return cloneImage(img);
  const f = sp >= 8 ? Math.min(4, Math.floor(sp / 4)) : 1;
  const out = newImage(w, h);
  // The search (WebAssembly, lib/data/mean-shift-modes.ts) reads float64 values: bytes, or the coarse image's float32
  // means, which its exact two-lane sums require. Both are written straight into its input in WebAssembly memory.
  if (f === 1) {
    const modes = meanShiftModes(img.data, w, h, sp, sr);
    for (let k = 0; k < modes.length; k++) out.data[k] = u8(modes[k]);
    return out;
  }
  // The coarse image's modes and their packed bytes in buffers reused across calls (every element is written):
  // allocating them per image cost GC time.
  const cw = Math.ceil(w / f), chh = Math.ceil(h / f);
  let bufs = msScratch;
  // (`acc`, one coarse row's sums, is sized by the width alone: a wide, short image needs a longer one.)
  if (bufs.modes.length < cw * chh * 3 || bufs.acc.length < cw * 3) {
    const n = Math.max(cw * chh * 3, bufs.modes.length);
    bufs = { modes: new Float32Array(n), packed: new Int32Array(n / 3), acc: new Int32Array(Math.max(cw * 3, bufs.acc.length)) };
    if (n <= KEEP_SCRATCH_ELEMENTS) msScratch = bufs;
  }
  const acc = bufs.acc;
  const modes = meanShiftModes((into) => blockMeansRgb(img.data, w, h, f, into, acc), cw, chh, Math.max(1, Math.round(sp / f)), sr, bufs.modes.subarray(0, cw * chh * 3));
  // Candidates: the 2x2 coarse pixels whose centres surround the full-resolution pixel (fewer at a 1-px edge).
  // Neighbouring columns share them: runs of columns with the same candidate columns (xa, xb), f wide inside.
  const runStart: number[] = [], runXa: number[] = [], runXb: number[] = [];
  for (let x = 0; x < w; x++) {
    const x0 = Math.min(cw - 2, Math.max(0, Math.floor((x + 0.5) / f - 0.5)));
    const a = Math.max(0, x0), b = Math.min(cw - 1, x0 + 1);
    if (x === 0 || a !== runXa[runXa.length - 1] || b !== runXb[runXb.length - 1]) { runStart.push(x); runXa.push(a); runXb.push(b); }
  }
  runStart.push(w);
  // Each coarse mode's output bytes (u8 of its float32 values) packed into one integer: when the candidates' bytes
  // all agree, which one is the closest cannot change the output (most pixels away from region edges), so no
  // distance is computed; otherwise the winner's bytes are read from here.
  const packed = bufs.packed.subarray(0, cw * chh);
  for (let p = 0, q = 0; p < packed.length; p++, q += 3) packed[p] = (u8(modes[q]) << 16) | (u8(modes[q + 1]) << 8) | u8(modes[q + 2]);
  const src = img.data, o = out.data;
  // Rows with the same candidate rows (ya, yb; f of them inside) in one band: each run's candidates are read and
  // compared once per band, not once per row.
  const rowOf = (y: number) => Math.min(chh - 2, Math.max(0, Math.floor((y + 0.5) / f - 0.5)));
  for (let y = 0; y < h;) {
    const cy = rowOf(y);
    let ye = y + 1;
    while (ye < h && rowOf(ye) === cy) ye++;
    const ra = Math.max(0, cy) * cw, rb = Math.min(chh - 1, cy + 1) * cw;
    for (let r = 0; r < runXa.length; r++) {
      // The candidates in the order of a scan (rows ya, yb; columns xa, xb). With one coarse row or column a
      // candidate repeats; a repeat has the same distance and never wins the strict comparisons below.
      const a = ra + runXa[r], b = ra + runXb[r], c = rb + runXa[r], d = rb + runXb[r];
      const pa = packed[a], pb = packed[b], pc = packed[c], pd = packed[d];
      const span = (runStart[r + 1] - runStart[r]) * 3;
      if (pa === pb && pa === pc && pa === pd) {
        const m0 = pa >> 16, m1 = (pa >> 8) & 255, m2 = pa & 255;
        for (let yy = y; yy < ye; yy++) {
          const kb = (yy * w + runStart[r]) * 3, ke = kb + span;
          for (let k = kb; k < ke; k += 3) { o[k] = m0; o[k + 1] = m1; o[k + 2] = m2; }
        }
        continue;
      }
      // The four candidate modes (float32 values as doubles), the same for the whole run.
      const qa = a * 3, qb = b * 3, qc = c * 3, qd = d * 3;
      const a0 = modes[qa], a1 = modes[qa + 1], a2 = modes[qa + 2], b0 = modes[qb], b1 = modes[qb + 1], b2 = modes[qb + 2];
      const c0 = modes[qc], c1 = modes[qc + 1], c2 = modes[qc + 2], d0 = modes[qd], d1 = modes[qd + 1], d2 = modes[qd + 2];
      for (let yy = y; yy < ye; yy++) {
        const kb = (yy * w + runStart[r]) * 3, ke = kb + span;
        for (let k = kb; k < ke; k += 3) {
          const p0 = src[k], p1 = src[k + 1], p2 = src[k + 2];
          let e0 = a0 - p0, e1 = a1 - p1, e2 = a2 - p2;
          const da = e0 * e0 + e1 * e1 + e2 * e2;
          e0 = b0 - p0; e1 = b1 - p1; e2 = b2 - p2;
          const db = e0 * e0 + e1 * e1 + e2 * e2;
          e0 = c0 - p0; e1 = c1 - p1; e2 = c2 - p2;
          const dc = e0 * e0 + e1 * e1 + e2 * e2;
          e0 = d0 - p0; e1 = d1 - p1; e2 = d2 - p2;
          const dd = e0 * e0 + e1 * e1 + e2 * e2;
          // The first closest in scan order, as a running strict minimum over a, b, c, d finds it: the closer of
          // (a, b) and of (c, d), each keeping the first on a tie, then (c, d)'s only if strictly closer. Four
          // independent distances and selects instead of three dependent compare-and-branch steps (~6% of the pass).
          const v = (dd < dc ? dd : dc) < (db < da ? db : da) ? (dd < dc ? pd : pc) : (db < da ? pb : pa);
          o[k] = v >> 16; o[k + 1] = (v >> 8) & 255; o[k + 2] = v & 255;
        }
      }
    }
    y = ye;
  }
  return out;
};

let msScratch = { modes: new Float32Array(0), packed: new Int32Array(0), acc: new Int32Array(0) };

/** Dark horizontal lines (x0.01) every max(3, 20 / (i + 0.1)) px, max(5, 7i) px thick; seeded phase. */
const scanLines: Impl = (img, { i, s, stream }) => {
  const { width: w, height: h } = img;
  const out = cloneImage(img);
  const interval = Math.max(2, Math.max(3, Math.floor(20 / (i + 0.1))) * s);
  const thick = Math.min(interval - 1, Math.max(1, Math.max(5, Math.floor(7 * i)) * s));
  const phase = stream('phase').float() * interval;
  const d = out.data;
  for (let y = 0; y < h; y++) {
    let m = (y - phase) % interval;
    if (m < 0) m += interval;
    if (m >= thick) continue;
    for (let k = y * w * 3, e = k + w * 3; k < e; k++) d[k] = Math.floor(d[k] * 0.01);
  }
  return out;
};

/** img * (1 - i^2). */
const darkIllumination: Impl = (img, { i }) => {
  const out = newImage(img.width, img.height);
  const f = 1 - i * i;
  const o = out.data, d = img.data;
  for (let k = 0; k < o.length; k++) o[k] = d[k] * f; // Uint8Array stores truncate: floor for values >= 0
  return out;
};

/**
 * Wavy warp: output row y samples the input at x + d(y), y + 0.7 d(y), with d(y) = 40i sin(y / 30 + phase)
 * px (bilinear, clamped at the edges). The pipeline's phase is 5i; here it is drawn from the seed.
 */
const atmosphericTurbulence: Impl = (img, { i, s, stream }) => {
  const { width: w, height: h, data } = img;
  const out = newImage(w, h);
  const o = clamped(out.data);
  const amp = 40 * i * s;
  const period = 30 * s;
  const phase = stream('phase').uniform(0, 2 * Math.PI);
  for (let y = 0; y < h; y++) {
    const dd = amp * Math.sin(y / period + phase);
    const sy = Math.min(h - 1, Math.max(0, y + 0.7 * dd));
    const y0 = Math.floor(sy), y1 = Math.min(h - 1, y0 + 1), fy = sy - y0;
    // The shift is constant along the row: one fractional weight, clamped columns only near the edges.
    const shift = Math.floor(dd), fx = dd - shift;
    const r0 = y0 * w, r1 = y1 * w, row = y * w * 3;
    for (let x = 0; x < w; x++) {
      const xa = Math.min(w - 1, Math.max(0, x + shift)), xb = Math.min(w - 1, Math.max(0, x + shift + 1));
      const a = (r0 + xa) * 3, b = (r0 + xb) * 3, c = (r1 + xa) * 3, e = (r1 + xb) * 3, k = row + x * 3;
      for (let ch = 0; ch < 3; ch++) {
        const top = data[a + ch] + (data[b + ch] - data[a + ch]) * fx;
        const bot = data[c + ch] + (data[e + ch] - data[c + ch]) * fx;
        o[k + ch] = top + (bot - top) * fy;
      }
    }
  }
  return out;
};

/** Additive Gaussian noise, std 75i on 0..255, independent per channel. */
const gaussianNoise: Impl = (img, { i, seedOf }) => {
  // d + 75i * fillStandardNormalFast(stream('noise')), without the 786 KiB noise array (addStandardNormalFast).
  const out = newImage(img.width, img.height);
  addStandardNormalFast(img.data, 75 * i, seedOf('noise'), clamped(out.data));
  return out;
};

/**
 * Colour bleeding: a wide, nearly flat Gaussian (size 3 + 2*floor(20i), sigma 50i) scaled by i^2, blended as
 * img*max(0.1, 1-0.9i) + diffused*min(0.9, 0.9i); above i 0.9, 100i grey blots as well.
 */
const colorDiffusion: Impl = (img, { i, s, stream }) => {
  const { width: w, height: h } = img;
  const radius = Math.max(1, Math.round(Math.floor(20 * i) * s));
  // sigma = 50i is 2.5x the kernel's half-width 20i: the truncated Gaussian is within 8% of flat, so a box
  // of the same width (running sums, O(1) per pixel) stands in for it.
  const i2 = i * i;
  const out = newImage(w, h);
  const o = clamped(out.data), d = img.data;
  const a = Math.max(0.1, 1 - 0.9 * i), b = Math.min(0.9, 0.9 * i);
  if (i <= 0.9) {
    // Blended row by row as the blur produces them (no blurred image in between).
    boxSumsRgbRows(d, w, h, radius, radius, (y, sums, count, tmp, add, sub) => diffuseRow(d, sums, count, o, y * sums.length, a, b, i2, tmp, add, sub));
    return out;
  }
  const diffused = boxBlurRgbBytes(d, w, h, radius, radius);
  for (let k = 0; k < diffused.length; k++) diffused[k] = Math.floor(diffused[k] * i2);
  const cv: Canvas = { width: w, height: h, channels: 3, data: diffused };
  const r = stream('blots');
  for (let k = 0, n = Math.floor(100 * i); k < n; k++) {
    const x = r.int(0, w - 1), y = r.int(0, h - 1);
    const rad = r.int(5, 19) * s;
    const g = r.int(0, 254);
    fillCircle(cv, x, y, Math.max(0.5, rad), { color: g });
  }
  for (let k = 0; k < o.length; k++) o[k] = d[k] * a + diffused[k] * b;
  return out;
};

/** color_diffusion's blend of one row of the box blur's sums (the blur's value is their float32 mean). */
function diffuseRow(d: Uint8Array, sums: Float64Array, count: number, o: Uint8ClampedArray, k0: number, a: number, b: number, i2: number, tmp: Float32Array, add: number, sub: number): void {
  if (add < 0) { for (let j = 0, k = k0; j < sums.length; j++, k++) o[k] = d[k] * a + Math.floor(Math.fround(sums[j] / count) * i2) * b; return; }
  // The sums moved on to the next row in the same loop (boxSumsRgbRows' contract).
  for (let j = 0, k = k0; j < sums.length; j++, k++) {
    const s = sums[j];
    o[k] = d[k] * a + Math.floor(Math.fround(s / count) * i2) * b;
    sums[j] = s + (tmp[add + j] - tmp[sub + j]);
  }
}

/**
 * Over-sharpening with the pipeline's 3x3 kernel [0 -1 0; -1 5 -1; 0 -1 0] (identity plus the Laplacian
 * [0 -1 0; -1 4 -1; 0 -1 0]) and its 0.7 img + 0.3 result blend. The pipeline multiplies the whole kernel by
 * 80i, which saturates nearly every pixel at any level (a flat wash whose strength does not follow i); here
 * the Laplacian alone is amplified, by 10i: result = clamp(img + 10i * laplacian), so the halos and clipped
 * edges grow with the level.
 */
const sharpnessChange: Impl = async (img, { i }) => {
  const g = 10 * i;
  const kernel = Float32Array.from([0, -g, 0, -g, 1 + 4 * g, -g, 0, -g, 0]);
  const out = new Uint8Array(img.data.length);
  // Convolve and blend in one pass where the convolution is JS's (the same bytes), else in two steps.
  if (!convolveBlendRgb(img, kernel, 3, 0.7, 0.3, clamped(out))) addWeighted(img.data, 0.7, await convolveRgb(img, kernel, 3), 0.3, out);
  return { width: img.width, height: img.height, data: out };
};

const GRAFFITI_TEXTS = ['X', 'FAKE', 'COPY', 'VOID', 'COPYRIGHT'];

/** 10i random coloured lines (width 1..5i); above i 0.55 also a red word (FAKE, COPY, VOID, ...), scale 5i. */
const graffiti: Impl = (img, { i, s, stream }) => {
  const { width: w, height: h } = img;
  const out = cloneImage(img);
  const cv: Canvas = { width: w, height: h, channels: 3, data: out.data };
  const r = stream('lines');
  const maxT = Math.max(1, Math.floor(5 * i));
  for (let k = 0, n = Math.floor(10 * i); k < n; k++) {
    const color = [r.int(0, 255), r.int(0, 255), r.int(0, 255)];
    const x1 = r.int(0, w - 1), y1 = r.int(0, h - 1), x2 = r.int(0, w - 1), y2 = r.int(0, h - 1);
    const t = 1 + Math.floor(r.float() * maxT);
    strokeLine(cv, x1 + 0.5, y1 + 0.5, x2 + 0.5, y2 + 0.5, Math.max(1, t * s), { color });
  }
  if (i > 0.55) {
    const tr = stream('text');
    // The pipeline's random.choice over the words and one random number.
    const pick = tr.int(0, GRAFFITI_TEXTS.length);
    const text = pick < GRAFFITI_TEXTS.length ? GRAFFITI_TEXTS[pick] : String(tr.int(1, 100));
    const scale = Math.max(0.5, 5 * i);
    const capH = 21 * scale * s; // Hershey simplex capitals are ~21 px tall at scale 1
    const thick = Math.max(1, Math.floor(scale) * s);
    const tw = textWidth(text, capH);
    const margin = 10 * s;
    if (h - margin > capH + margin) {
      const x = tr.uniform(0, Math.max(1, w - tw - margin));
      const baseline = tr.uniform(capH + margin, h - margin);
      drawText(cv, text, x, baseline - capH, capH, thick, { color: [255, 0, 0] });
    }
  }
  return out;
};

/**
 * Damaged-watermark look: 1 + 15i rectangles (50..200 x 20..80 px) are filled in from their surroundings
 * (inpainting), blended back with weight i; above i 0.5 the rectangles' outlines are darkened (x0.8).
 */
const watermarkDamage: Impl = (img, { i, s, stream }) => {
  const { width: w, height: h } = img;
  const mask = new Uint8Array(w * h);
  const r = stream('rects');
  for (let k = 0, n = Math.floor(1 + 15 * i); k < n; k++) {
    const x = Math.floor(r.float() * Math.max(1, w - 50 * s + 1));
    const y = Math.floor(r.float() * Math.max(1, h - 50 * s + 1));
    const rw = Math.max(2, Math.round(r.int(50, 200) * s));
    const rh = Math.max(2, Math.round(r.int(20, 80) * s));
    for (let yy = y; yy <= Math.min(h - 1, y + rh); yy++) mask.fill(1, yy * w + x, yy * w + Math.min(w - 1, x + rw) + 1);
  }
  // out = addWeighted(img, 1 - i, inpainted, i). Outside the mask the inpainted image is the image itself, and
  // v (1 - i) + v i is within 1e-13 of the byte v, so it rounds back to v: those pixels are copied, and only the
  // masked ones are computed (inpaintBlend).
  const out = cloneImage(img);
  if (w > 1 || h > 1) inpaintBlend(img, mask, i, i > 0.5, out.data);
  return out;
};

type PyramidLevel = { w: number; h: number; c: Float32Array; wt: Float32Array };
let inpaintScratch = { c: new Float32Array(0), wt: new Float32Array(0) };

/**
 * Fills masked pixels smoothly from their surroundings (pull-push: a pyramid of mask-weighted 2x2 means,
 * then each level's holes take the bilinearly upsampled coarser colour), a fast stand-in for OpenCV's
 * Telea inpainting, and blends the fill into `out` at the masked pixels only: out = img (1 - i) + fill i,
 * rounded; with `darken`, masked pixels next to an unmasked one (the outlines) then x0.8, floored.
 * The image is at least 2 px in one direction (the pyramid has a level above it).
 *
 * The same values as the full-image pull-push over float copies it replaces (frozen in
 * test/data/reference/corruptions-v1.ts): the first level is computed from the bytes with integer sums (there
 * every product and sum of the float formula is exact, and the quotient of the same rational rounds the same), the
 * coarser levels with the original arithmetic in the original order, and at full resolution only the masked
 * pixels (weight 0) are filled, with 0 * v + 1 * fill = fill.
 */
function inpaintBlend(img: RgbImage, mask: Uint8Array, i: number, darken: boolean, o8: Uint8Array): void {
  const { width: W, height: H, data: d } = img;
  // Pull, first level: colour = mean of the unmasked children among the 2x2 (an odd last row or column repeats its
  // pixel with half the weight: the same mean), weight = min(1, sum of the children's weights).
  const cw = Math.ceil(W / 2), ch = Math.ceil(H / 2);
  // The first level in buffers reused across calls (every element is written below): allocating and zeroing
  // them was a tenth of the corruption.
  let bufs = inpaintScratch;
  if (bufs.wt.length < cw * ch) {
    bufs = { c: new Float32Array(cw * ch * 3), wt: new Float32Array(cw * ch) };
    if (cw * ch * 3 <= KEEP_SCRATCH_ELEMENTS) inpaintScratch = bufs;
  }
  const L1: PyramidLevel = { w: cw, h: ch, c: bufs.c.subarray(0, cw * ch * 3), wt: bufs.wt.subarray(0, cw * ch) };
  const c1 = L1.c, wt1 = L1.wt;
  for (let y = 0; y < ch; y++) {
    const y0 = 2 * y, y1 = Math.min(H - 1, y0 + 1);
    const sy = y1 === y0 ? 0.5 : 1;
    for (let x = 0, p = y * cw; x < cw; x++, p++) {
      const x0 = 2 * x, x1 = Math.min(W - 1, x0 + 1);
      const q0 = y0 * W + x0, q1 = y0 * W + x1, q2 = y1 * W + x0, q3 = y1 * W + x1;
      const m0 = 1 - mask[q0], m1 = 1 - mask[q1], m2 = 1 - mask[q2], m3 = 1 - mask[q3];
      const n = m0 + m1 + m2 + m3;
      if (n === 4) {
        // x / 4 and x * 0.25 are the same double.
        const a = q0 * 3, b = q1 * 3, c = q2 * 3, e = q3 * 3;
        c1[p * 3] = (d[a] + d[b] + d[c] + d[e]) * 0.25;
        c1[p * 3 + 1] = (d[a + 1] + d[b + 1] + d[c + 1] + d[e + 1]) * 0.25;
        c1[p * 3 + 2] = (d[a + 2] + d[b + 2] + d[c + 2] + d[e + 2]) * 0.25;
      } else if (n > 0) {
        const a = q0 * 3, b = q1 * 3, c = q2 * 3, e = q3 * 3;
        c1[p * 3] = (m0 * d[a] + m1 * d[b] + m2 * d[c] + m3 * d[e]) / n;
        c1[p * 3 + 1] = (m0 * d[a + 1] + m1 * d[b + 1] + m2 * d[c + 1] + m3 * d[e + 1]) / n;
        c1[p * 3 + 2] = (m0 * d[a + 2] + m1 * d[b + 2] + m2 * d[c + 2] + m3 * d[e + 2]) / n;
      } else {
        c1[p * 3] = 0; c1[p * 3 + 1] = 0; c1[p * 3 + 2] = 0; // as a fresh level's
      }
      wt1[p] = Math.min(1, n * (x1 === x0 ? 0.5 : 1) * sy);
    }
  }
  const C = pullPush(L1)[0];
  // Push into the full resolution: each masked pixel takes the bilinearly upsampled colour of the first level
  // (the coarse columns and weights of each full-resolution column in tables), blended into `out` as it goes.
  const xa = new Int32Array(W), xb = new Int32Array(W), fxs = new Float64Array(W);
  for (let x = 0; x < W; x++) {
    const u = Math.min(cw - 1, Math.max(0, (x + 0.5) / 2 - 0.5));
    const x0 = Math.floor(u);
    xa[x] = x0 * 3; xb[x] = Math.min(cw - 1, x0 + 1) * 3; fxs[x] = u - x0;
  }
  const o = clamped(o8), cc = C.c;
  const wa = 1 - i, wb = i;
  for (let y = 0; y < H; y++) {
    const v = Math.min(ch - 1, Math.max(0, (y + 0.5) / 2 - 0.5));
    const y0 = Math.floor(v), fy = v - y0;
    const ra = y0 * cw * 3, rb = Math.min(ch - 1, y0 + 1) * cw * 3;
    for (let x = 0, p = y * W; x < W; x++, p++) {
      if (!mask[p]) continue;
      const fx = fxs[x], ka = ra + xa[x], kb = ra + xb[x], kc = rb + xa[x], kd = rb + xb[x], k = p * 3;
      let top = cc[ka] + (cc[kb] - cc[ka]) * fx, bot = cc[kc] + (cc[kd] - cc[kc]) * fx;
      o[k] = d[k] * wa + Math.fround(top + (bot - top) * fy) * wb;
      top = cc[ka + 1] + (cc[kb + 1] - cc[ka + 1]) * fx; bot = cc[kc + 1] + (cc[kd + 1] - cc[kc + 1]) * fx;
      o[k + 1] = d[k + 1] * wa + Math.fround(top + (bot - top) * fy) * wb;
      top = cc[ka + 2] + (cc[kb + 2] - cc[ka + 2]) * fx; bot = cc[kc + 2] + (cc[kd + 2] - cc[kc + 2]) * fx;
      o[k + 2] = d[k + 2] * wa + Math.fround(top + (bot - top) * fy) * wb;
      if (darken && ((x > 0 && !mask[p - 1]) || (x < W - 1 && !mask[p + 1]) || (y > 0 && !mask[p - W]) || (y < H - 1 && !mask[p + W]))) {
        o8[k] = Math.floor(o8[k] * 0.8); o8[k + 1] = Math.floor(o8[k + 1] * 0.8); o8[k + 2] = Math.floor(o8[k + 2] * 0.8);
      }
    }
  }
}

/**
 * Pull-push from `first` up: the coarser levels are pulled (colour = weighted mean of the 2x2 children, weight =
 * min(1, sum of their weights)), then each level's missing weight is filled from the (already filled) coarser one,
 * down to `first`. Returns the levels, `first` at index 0, filled.
 */
function pullPush(first: PyramidLevel): PyramidLevel[] {
  const levels: PyramidLevel[] = [first];
  for (let L = first; L.w > 1 || L.h > 1;) {
    const w = Math.ceil(L.w / 2), h = Math.ceil(L.h / 2);
    const c = new Float32Array(w * h * 3), wt = new Float32Array(w * h);
    for (let y = 0; y < h; y++) {
      const y0 = 2 * y, y1 = Math.min(L.h - 1, y0 + 1);
      for (let x = 0; x < w; x++) {
        const x0 = 2 * x, x1 = Math.min(L.w - 1, x0 + 1);
        // The 2x2 children (an odd last row or column repeats its pixel, with half the weight each time).
        const q0 = y0 * L.w + x0, q1 = y0 * L.w + x1, q2 = y1 * L.w + x0, q3 = y1 * L.w + x1;
        const scale = (x1 === x0 ? 0.5 : 1) * (y1 === y0 ? 0.5 : 1);
        const w0 = L.wt[q0] * scale, w1 = L.wt[q1] * scale, w2 = L.wt[q2] * scale, w3 = L.wt[q3] * scale;
        const sw = w0 + w1 + w2 + w3;
        const p = y * w + x;
        if (sw > 0) {
          const lc = L.c;
          c[p * 3] = (w0 * lc[q0 * 3] + w1 * lc[q1 * 3] + w2 * lc[q2 * 3] + w3 * lc[q3 * 3]) / sw;
          c[p * 3 + 1] = (w0 * lc[q0 * 3 + 1] + w1 * lc[q1 * 3 + 1] + w2 * lc[q2 * 3 + 1] + w3 * lc[q3 * 3 + 1]) / sw;
          c[p * 3 + 2] = (w0 * lc[q0 * 3 + 2] + w1 * lc[q1 * 3 + 2] + w2 * lc[q2 * 3 + 2] + w3 * lc[q3 * 3 + 2]) / sw;
        }
        wt[p] = Math.min(1, sw);
      }
    }
    L = { w, h, c, wt };
    levels.push(L);
  }
  for (let k = levels.length - 2; k >= 0; k--) {
    const F = levels[k], C = levels[k + 1];
    for (let y = 0; y < F.h; y++) {
      const v = Math.min(C.h - 1, Math.max(0, (y + 0.5) / 2 - 0.5));
      const y0 = Math.floor(v), y1 = Math.min(C.h - 1, y0 + 1), fy = v - y0;
      for (let x = 0; x < F.w; x++) {
        const p = y * F.w + x;
        const wf = F.wt[p];
        if (wf >= 1) continue;
        const u = Math.min(C.w - 1, Math.max(0, (x + 0.5) / 2 - 0.5));
        const x0 = Math.floor(u), x1 = Math.min(C.w - 1, x0 + 1), fx = u - x0;
        for (let ch = 0; ch < 3; ch++) {
          const a = C.c[(y0 * C.w + x0) * 3 + ch], b = C.c[(y0 * C.w + x1) * 3 + ch];
          const c = C.c[(y1 * C.w + x0) * 3 + ch], d = C.c[(y1 * C.w + x1) * 3 + ch];
          const top = a + (b - a) * fx, bot = c + (d - c) * fx;
          F.c[p * 3 + ch] = wf * F.c[p * 3 + ch] + (1 - wf) * (top + (bot - top) * fy);
        }
        F.wt[p] = 1;
      }
    }
  }
  return levels;
}

const IMPLS: Record<CorruptionType, Impl> = {
  lens_blur: lensBlur,
  lens_flare: lensFlare,
  motion_blur: motionBlur,
  dirty_lens: dirtyLens,
  hsv_saturation: hsvSaturation,
  jpeg_compression: jpegCompression,
  block_exchange: blockExchange,
  mean_shift: meanShift,
  scan_lines: scanLines,
  dark_illumination: darkIllumination,
  atmospheric_turbulence: atmosphericTurbulence,
  gaussian_noise: gaussianNoise,
  color_diffusion: colorDiffusion,
  sharpness_change: sharpnessChange,
  graffiti,
  watermark_damage: watermarkDamage,
};

// ---- the mix: which type and level each sample gets -------------------------------------------------------

const levelSpecSchema = z.union([z.enum(['low', 'mid', 'high']), z.number().min(0).max(1)]);

/**
 * Which corruptions a dataset draws, one type per image as the Robust-R1 pipeline does.
 * - `types`: weight per type; when given, unlisted types get 0. Default: every type weight 1.
 * - `families`: weight per family, shared among its types in proportion to their type weights; when given,
 *   unlisted families get 0.
 * - `levels`: a list to pick from uniformly (names or numbers; default low, mid, high), or `{min, max}` for a
 *   uniform intensity.
 * - `refSize`: shorter side (px) at which pixel-sized parameters take the pipeline's values.
 */
export const corruptionMixSchema = z.object({
  types: z.partialRecord(z.enum(CORRUPTION_TYPES as [CorruptionType, ...CorruptionType[]]), z.number().min(0)).optional(),
  families: z.partialRecord(z.enum(FAMILY_NAMES as [CorruptionFamily, ...CorruptionFamily[]]), z.number().min(0)).optional(),
  levels: z.union([
    z.array(levelSpecSchema).min(1),
    z.object({ min: z.number().min(0).max(1), max: z.number().min(0).max(1) }).strict()
      .refine((r) => r.min <= r.max, 'levels.min must not exceed levels.max'),
  ]).default(['low', 'mid', 'high']),
  refSize: z.number().int().positive().default(DEFAULT_REF_SIZE),
}).strict().superRefine((m, ctx) => {
  if (typeWeights(m).every((p) => p === 0)) ctx.addIssue({ code: 'custom', message: 'the corruption mix gives every type weight 0' });
});

export type CorruptionMixInput = z.input<typeof corruptionMixSchema>;
export type CorruptionMix = z.output<typeof corruptionMixSchema>;

/** Normalised probability of each type in CORRUPTION_TYPES order. */
export function typeWeights(mix: Pick<CorruptionMix, 'types' | 'families'>): number[] {
  const tw = CORRUPTION_TYPES.map((t) => (mix.types ? mix.types[t] ?? 0 : 1));
  let p: number[];
  if (mix.families) {
    const famTotal = new Map<CorruptionFamily, number>();
    CORRUPTION_TYPES.forEach((t, k) => famTotal.set(familyOf(t), (famTotal.get(familyOf(t)) ?? 0) + tw[k]));
    p = CORRUPTION_TYPES.map((t, k) => {
      const f = familyOf(t);
      const tot = famTotal.get(f) ?? 0;
      return tot > 0 ? ((mix.families![f] ?? 0) * tw[k]) / tot : 0;
    });
  } else p = tw;
  const sum = p.reduce((a, b) => a + b, 0);
  return sum > 0 ? p.map((v) => v / sum) : p.map(() => 0);
}

interface CompiledMix { cdf: Float64Array; mix: CorruptionMix }
const compiled = new WeakMap<object, CompiledMix>();

function compile(mix: CorruptionMixInput | CorruptionMix): CompiledMix {
  let c = compiled.get(mix);
  if (!c) {
    const parsed = corruptionMixSchema.parse(mix);
    const p = typeWeights(parsed);
    const cdf = new Float64Array(p.length);
    let acc = 0;
    p.forEach((v, k) => { acc += v; cdf[k] = acc; });
    c = { cdf, mix: parsed };
    compiled.set(mix, c);
  }
  return c;
}

export interface CorruptionChoice { type: CorruptionType; level: number }

/** Draws one (type, level) from the mix; the same mix and seed always give the same choice. */
export function sampleCorruption(mix: CorruptionMixInput | CorruptionMix, seed: number): CorruptionChoice {
  const { cdf, mix: m } = compile(mix);
  const r = rng(hashSeed(seed, 'corruption-mix'));
  const u = r.float() * cdf[cdf.length - 1];
  let k = 0;
  while (k < cdf.length - 1 && u >= cdf[k]) k++;
  const type = CORRUPTION_TYPES[k];
  let level: number;
  if (Array.isArray(m.levels)) {
    const l = r.pick(m.levels);
    level = typeof l === 'string' ? LEVELS[l] : l;
  } else level = m.levels.min + (m.levels.max - m.levels.min) * r.float();
  return { type, level };
}

/** The parsed, defaulted form of a mix (throws a zod error naming the bad field). */
export function parseCorruptionMix(mix: unknown): CorruptionMix {
  return corruptionMixSchema.parse(mix ?? {});
}

/** Types and families as plain JSON (for `corrupt --list`). */
export function describeCorruptions(): { types: CorruptionType[]; families: Record<CorruptionFamily, CorruptionType[]>; levels: typeof LEVELS } {
  return {
    types: [...CORRUPTION_TYPES],
    families: Object.fromEntries(FAMILY_NAMES.map((f) => [f, [...FAMILIES[f]]])) as Record<CorruptionFamily, CorruptionType[]>,
    levels: LEVELS,
  };
}
