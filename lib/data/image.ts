// The project's image type (8-bit interleaved RGB) and its conversions: decoding with sharp (any input sharp
// reads, alpha dropped, grayscale expanded, EXIF orientation applied), resizing to the training resolution,
// PNG encoding, and the [3,H,W] float layout that the ONNX graphs take.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import sharp, { type Sharp } from 'sharp';
import { imageFormatOf } from './image-format.ts';

/** Interleaved 8-bit RGB, row-major (HWC): pixel (x, y) channel c is `data[(y * width + x) * 3 + c]`. */
export type RgbImage = { width: number; height: number; data: Uint8Array };

/** How an image is brought to a square training resolution: shorter side to `size`, then a crop. */
export type CropMode = 'center' | 'random';

export interface ResizeOptions {
  /** Side of the square output. */
  size: number;
  /** 'center' (default) or 'random' (then `cropSeed` picks the offset, as a fraction of the slack). */
  crop?: CropMode;
  /** Crop position along each axis in [0, 1] (0 = left/top, 0.5 = centre). Overrides `crop`. */
  cropAt?: { x: number; y: number };
  /** Shorter side the image is resized to before the crop (default `size`; larger crops a smaller part). */
  shortSide?: number;
}

export function newImage(width: number, height: number): RgbImage {
  return { width, height, data: new Uint8Array(width * height * 3) };
}

export function cloneImage(img: RgbImage): RgbImage {
  return { width: img.width, height: img.height, data: new Uint8Array(img.data) };
}

/** Throws unless `img` is a well-formed RgbImage. */
export function assertRgbImage(img: RgbImage, what = 'image'): void {
  if (!Number.isInteger(img.width) || !Number.isInteger(img.height) || img.width < 1 || img.height < 1) {
    throw new Error(`${what}: bad dimensions ${img.width}x${img.height}`);
  }
  if (!(img.data instanceof Uint8Array) || img.data.length !== img.width * img.height * 3) {
    throw new Error(`${what}: data must be a Uint8Array of width*height*3 = ${img.width * img.height * 3} bytes`);
  }
}

/** [3,H,W] float32 in [0, 1] (planar), as the policy and reward graphs take. */
export function toCHWFloat(img: RgbImage): Float32Array {
  const n = img.width * img.height;
  const out = new Float32Array(3 * n);
  const d = img.data;
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    out[i] = d[j] / 255;
    out[n + i] = d[j + 1] / 255;
    out[2 * n + i] = d[j + 2] / 255;
  }
  return out;
}

/** Clean/corrupted pairs as two [n,3,H,W] float32 arrays in [0, 1], the batch layout every graph takes. */
export function stackPairs(pairs: readonly { corrupted: RgbImage; clean: RgbImage }[]): { corrupted: Float32Array; clean: Float32Array } {
  const first = pairs[0];
  const pix = first ? 3 * first.corrupted.width * first.corrupted.height : 0;
  const corrupted = new Float32Array(pairs.length * pix);
  const clean = new Float32Array(pairs.length * pix);
  pairs.forEach((p, i) => {
    corrupted.set(toCHWFloat(p.corrupted), i * pix);
    clean.set(toCHWFloat(p.clean), i * pix);
  });
  return { corrupted, clean };
}

/** Values clamped to [0, 1]: an action or mean as the reward sees it (images are 8-bit in the end). */
export function clamp01(x: Float32Array): Float32Array {
  return clamp01Into(x, new Float32Array(x.length), 0);
}

/** clamp01 written into `out` at `offset` (no array of its own); NaN stays NaN, as in clamp01. Returns `out`. */
export function clamp01Into(x: Float32Array, out: Float32Array, offset: number): Float32Array {
  if (offset < 0 || offset + x.length > out.length) throw new Error(`clamp01Into: ${x.length} values at ${offset} do not fit in ${out.length}`);
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    out[offset + i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
  return out;
}

/** Inverse of toCHWFloat: values are scaled by 255, rounded and clamped to 0..255 (NaN becomes 0). */
export function fromCHWFloat(data: Float32Array | ArrayLike<number>, width: number, height: number): RgbImage {
  const n = width * height;
  if (data.length !== 3 * n) throw new Error(`fromCHWFloat: expected ${3 * n} values for 3x${height}x${width}, got ${data.length}`);
  const img = newImage(width, height);
  const d = img.data;
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    d[j] = q(data[i]);
    d[j + 1] = q(data[n + i]);
    d[j + 2] = q(data[2 * n + i]);
  }
  return img;
}

function q(v: number): number {
  const x = Math.round(v * 255);
  return x > 255 ? 255 : x >= 0 ? x : 0; // NaN fails both tests and becomes 0
}

/** Largest image decoded (pixels): a bigger one is refused before decoding, not allowed to exhaust memory. */
export const MAX_INPUT_PIXELS = 1 << 28;

/** The sharp pipeline that reads `input` with alpha dropped and colour normalised to sRGB. */
function open(input: string | Uint8Array): Sharp {
  // failOn 'error': truncated or corrupt data throws instead of being decoded half-grey.
  return sharp(input, { failOn: 'error', limitInputPixels: MAX_INPUT_PIXELS }).autoOrient();
}

async function toRgb(pipeline: Sharp): Promise<RgbImage> {
  const { data, info } = await pipeline
    .removeAlpha()
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  const { width, height, channels } = info;
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  // The result is a view of sharp's output buffer (its own memory, not a pooled slab): no copy. A copy cost
  // ~0.4-0.7 ms per 256x256 image (fresh pages faulted in and filled).
  if (channels === 3) return { width, height, data: bytes };
  // Defensive: expand grey (1 channel) or drop a leftover 4th channel.
  const out = newImage(width, height);
  for (let i = 0, n = width * height; i < n; i++) {
    for (let c = 0; c < 3; c++) out.data[i * 3 + c] = bytes[i * channels + (channels === 1 ? 0 : Math.min(c, channels - 1))];
  }
  return out;
}

/**
 * Pixel size of an encoded image after EXIF orientation. Throws for what decoding must not attempt: an image
 * over MAX_INPUT_PIXELS, or a CMYK one (its conversion to RGB depends on a colour profile, so it is not exact).
 * Grey, grey+alpha, RGBA and 16-bit images are accepted: toRgb converts them exactly (16-bit to the nearest
 * 8-bit value).
 */
export async function imageSize(input: string | Uint8Array): Promise<{ width: number; height: number }> {
  // No pixel limit on reading the header: the check below names the size.
  const m = await sharp(input, { failOn: 'error', limitInputPixels: false }).metadata();
  if (!m.width || !m.height) throw new Error('image has no dimensions');
  if (m.width * m.height > MAX_INPUT_PIXELS) {
    throw new Error(`enormous image: ${m.width}x${m.height} is over the ${MAX_INPUT_PIXELS} pixel limit (downscale it first)`);
  }
  if (m.space === 'cmyk') throw new Error('CMYK image: converting it to RGB needs its colour profile and is not exact (convert it to sRGB first)');
  const swap = (m.orientation ?? 1) >= 5;
  return swap ? { width: m.height, height: m.width } : { width: m.width, height: m.height };
}

/** Where the `size`x`size` crop starts in an image resized to shorter side `size`. */
export function cropBox(width: number, height: number, opts: ResizeOptions): {
  rw: number; rh: number; left: number; top: number;
} {
  const { size } = opts;
  const scale = Math.max(size, opts.shortSide ?? size) / Math.min(width, height);
  const rw = Math.max(size, Math.round(width * scale));
  const rh = Math.max(size, Math.round(height * scale));
  const at = opts.cropAt ?? { x: 0.5, y: 0.5 };
  const left = Math.round((rw - size) * Math.min(1, Math.max(0, at.x)));
  const top = Math.round((rh - size) * Math.min(1, Math.max(0, at.y)));
  return { rw, rh, left, top };
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * A file up to this size (bytes) is read whole on the calling thread and handed to sharp as bytes: sharp's own
 * read from a path cost ~0.1 ms more CPU per 256x256 PNG (21 KB) than one synchronous read here; a larger file
 * (a photograph) is read by libvips off the event loop, as before.
 */
const READ_WHOLE_MAX = 256 << 10;

/**
 * The input to decode as a PNG (the bytes, the file's bytes or its path), or undefined if it does not start with
 * the PNG signature. A path costs a few small synchronous system calls (open, fstat, one read); a file that cannot
 * be opened is "not PNG" and fails later, in sharp, with sharp's message as before.
 */
function pngInput(input: string | Uint8Array): string | Uint8Array | undefined {
  if (typeof input !== 'string') return hasPngSignature(input) ? input : undefined;
  let fd: number;
  try { fd = openSync(input, 'r'); } catch { return undefined; }
  try {
    const size = fstatSync(fd).size;
    const bytes = new Uint8Array(size >= 8 && size <= READ_WHOLE_MAX ? size : 8);
    let got = 0;
    for (let n; got < bytes.length && (n = readSync(fd, bytes, got, bytes.length - got, got)) > 0;) got += n;
    if (!hasPngSignature(bytes.subarray(0, got))) return undefined;
    // A file that shrank between the fstat and the read is left to sharp, which reads it itself.
    return got === size ? bytes : input;
  } catch { return undefined; } finally { closeSync(fd); }
}

function hasPngSignature(head: Uint8Array): boolean {
  return head.length >= 8 && PNG_SIGNATURE.every((b, k) => head[k] === b);
}

/**
 * A PNG in one libvips call: a PNG is never CMYK, and the pixel limit is sharp's own (limitInputPixels), so
 * the header read that other formats take first (imageSize) is needed only to name an enormous image.
 */
async function decodePng(input: string | Uint8Array, size: number | undefined): Promise<RgbImage> {
  try {
    const p = open(input);
    return await toRgb(size === undefined ? p : p.resize(size, size, { fit: 'cover', position: 'centre' }));
  } catch (err) {
    if (/pixel limit/i.test(String(err))) await imageSize(input); // throws the error that names the size
    throw err;
  }
}

/**
 * Decodes PNG, JPEG, WebP (anything sharp reads) from a path or bytes into RGB. With `size`, the image is
 * resized so its shorter side is `size` (Lanczos) and cropped to `size`x`size` (centre unless `cropAt`).
 * Throws on unreadable or truncated input.
 */
export async function decodeImage(input: string | Uint8Array, size?: number | ResizeOptions): Promise<RgbImage> {
  const opts: ResizeOptions | undefined = typeof size === 'number' ? { size } : size;
  if (opts && (!Number.isInteger(opts.size) || opts.size < 1)) throw new Error(`decodeImage: size must be a positive integer, got ${opts.size}`);
  const centre = !opts || ((opts.shortSide ?? opts.size) <= opts.size && (!opts.cropAt || (opts.cropAt.x === 0.5 && opts.cropAt.y === 0.5)));
  const png = centre ? pngInput(input) : undefined;
  if (png !== undefined) return decodePng(png, opts?.size);
  const { width, height } = await imageSize(input);
  if (!opts) return toRgb(open(input));
  if (centre) {
    // Centre crop: one pipeline (sharp's 'cover' resize).
    return toRgb(open(input).resize(opts.size, opts.size, { fit: 'cover', position: 'centre' }));
  }
  const box = cropBox(width, height, opts);
  let p = open(input);
  if (box.rw !== width || box.rh !== height) p = p.resize(box.rw, box.rh, { fit: 'fill' });
  if (box.rw !== opts.size || box.rh !== opts.size) p = p.extract({ left: box.left, top: box.top, width: opts.size, height: opts.size });
  return toRgb(p);
}

/**
 * The whole image, resized so its shorter side is `shortSide` and its longer side the nearest multiple of
 * `multiple` (at most multiple/2 px of aspect change; whole evaluation images then come in few sizes, and
 * each size needs its own policy graph).
 */
export async function decodeWhole(input: string | Uint8Array, shortSide: number, multiple = 8): Promise<RgbImage> {
  if (!Number.isInteger(shortSide) || shortSide < 1) throw new Error(`decodeWhole: shortSide must be a positive integer, got ${shortSide}`);
  const { width, height } = await imageSize(input);
  const long = (side: number, other: number) => Math.max(shortSide, Math.round((side * shortSide) / other / multiple) * multiple);
  const [w, h] = width <= height ? [shortSide, long(height, width)] : [long(width, height), shortSide];
  return toRgb(open(input).resize(w, h, { fit: 'fill' }));
}

/** The `size`x`size` square of `img` at crop position `at` (fractions of the slack, as cropBox). */
export function cropSquare(img: RgbImage, size: number, at: { x: number; y: number }): RgbImage {
  if (size > img.width || size > img.height) throw new Error(`cropSquare: ${size}x${size} does not fit in ${img.width}x${img.height}`);
  const left = Math.round((img.width - size) * Math.min(1, Math.max(0, at.x)));
  const top = Math.round((img.height - size) * Math.min(1, Math.max(0, at.y)));
  const out = newImage(size, size);
  for (let y = 0; y < size; y++) out.data.set(img.data.subarray(((top + y) * img.width + left) * 3, ((top + y) * img.width + left + size) * 3), y * size * 3);
  return out;
}

/**
 * One of the 8 symmetries of a square image, exactly (pixels moved, never resampled): k in 0..7, bit 0 a
 * horizontal flip, then k >> 1 quarter turns clockwise. k = 0 returns `img` itself.
 */
export function dihedral(img: RgbImage, k: number): RgbImage {
  if (!Number.isInteger(k) || k < 0 || k > 7) throw new Error(`dihedral: k must be an integer in 0..7, got ${k}`);
  if (k === 0) return img;
  const n = img.width;
  if (img.height !== n) throw new Error(`dihedral: the image must be square, got ${img.width}x${img.height}`);
  const out = newImage(n, n);
  const flip = (k & 1) === 1;
  const turns = k >> 1;
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      // Output (x, y) reads the flipped image at the inverse of the turns, and that at the mirrored column.
      let sx = x;
      let sy = y;
      for (let t = 0; t < turns; t++) [sx, sy] = [sy, n - 1 - sx];
      if (flip) sx = n - 1 - sx;
      const o = (y * n + x) * 3;
      const i = (sy * n + sx) * 3;
      out.data[o] = img.data[i]!;
      out.data[o + 1] = img.data[i + 1]!;
      out.data[o + 2] = img.data[i + 2]!;
    }
  }
  return out;
}

/** A sharp pipeline over the raw pixels of `img` (for further sharp operations). */
export function sharpOf(img: RgbImage): Sharp {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
}

/** Runs a sharp pipeline built on `img` and returns the result as RGB of the same size. */
export async function viaSharp(img: RgbImage, build: (s: Sharp) => Sharp): Promise<RgbImage> {
  return toRgb(build(sharpOf(img)));
}

/** Resizes (stretching) to exactly width x height. */
export function resizeImage(img: RgbImage, width: number, height: number): Promise<RgbImage> {
  return viaSharp(img, (s) => s.resize(width, height, { fit: 'fill' }));
}

export async function encodePng(img: RgbImage): Promise<Uint8Array> {
  const b = await sharpOf(img).png({ compressionLevel: 6 }).toBuffer();
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** Writes `img` to `path`; the format follows the extension (.png, .jpg/.jpeg, .webp). */
export async function writeImage(img: RgbImage, path: string): Promise<void> {
  const format = imageFormatOf(path); // an unknown extension is refused before anything is written
  let s = sharpOf(img);
  if (format === 'jpeg') s = s.jpeg({ quality: 95 });
  else if (format === 'webp') s = s.webp({ lossless: true });
  else s = s.png();
  await s.toFile(path);
}
