// libvips' float convolution (sharp `convolve`: edges replicated, the float result cast to bytes) replicated exactly in
// WebAssembly SIMD (integer sums of the weights' 13-bit chunks), for the kernels where that is provable (motion_blur's
// line kernels; round 18 mb18). Source: lib/data/wasm/convolve-exact.as.ts (AssemblyScript), compiled into the
// committed lib/data/wasm/convolve-exact.wasm by scripts/build-wasm.ts.
import type { RgbImage } from './image.ts';
import { KEEP_SCRATCH_ELEMENTS } from './filters.ts';
import { align16 as align, memoryUpTo, wasmInstances, type WasmExports } from './wasm-instances.ts';

interface Convolution extends WasmExports {
  ringBytes(w: number, r: number): number;
  convolve(src: number, out: number, ring: number, ptrs: number, pairs: number, n: number, w: number, h: number, r: number): void;
}

// One instance kept for images up to KEEP_SCRATCH_ELEMENTS values, a larger image's own (wasm-instances.ts).
const instanceFor = wasmInstances<Convolution>(new URL('./wasm/convolve-exact.wasm', import.meta.url));

/**
 * Whether convolveExactRgb gives libvips' bytes for this kernel. libvips sums weight x byte in doubles and rounds the
 * sum to float32; that sum is exact (so any order gives it) when the weights are 0 or float32 values >= 2^-14
 * (multiples of 2^-37, so every product is one) whose sum x 255 is below 2^8 (every partial sum then fits in
 * 8 + 37 = 45 bits). The module sums weight x 2^37 in three 13-bit chunks in 32-bit lanes: at most 1024 non-zero
 * weights keep each chunk's sum (< 255 x 8192 x 1024) below 2^31.
 */
export function isExactConvolution(kernel: Float32Array): boolean {
  let total = 0, taps = 0;
  for (const v of kernel) {
    if (v === 0) continue;
    if (!(v >= 2 ** -14)) return false;
    total += v;
    taps++;
  }
  return total * 255 < 256 && taps <= MAX_TAPS;
}

const MAX_TAPS = 1024;

/**
 * libvips' convolution of an RGB image by a square kernel (odd side) as sharp gives it (`convolve` with scale 1,
 * edges replicated, cast to bytes: min(255, trunc(fround(sum)))), for a kernel isExactConvolution accepts.
 */
export function convolveExactRgb(img: RgbImage, kernel: Float32Array, side: number): Uint8Array {
  const { width: w, height: h, data } = img;
  if (side % 2 !== 1 || kernel.length !== side * side) throw new Error(`convolveExactRgb: kernel must be side x side with odd side, got ${kernel.length} for ${side}`);
  if (!isExactConvolution(kernel)) throw new Error('convolveExactRgb: the kernel needs weights 0 or >= 2^-14 summing to less than 256/255, at most 1024 of them non-zero');
  if (data.length !== w * h * 3) throw new Error(`convolveExactRgb: image data has ${data.length} bytes, expected ${w * h * 3} for ${w}x${h}`);
  const r = (side - 1) >> 1;
  const taps: number[] = [];
  for (let k = 0; k < kernel.length; k++) if (kernel[k] !== 0) taps.push(k);
  if (taps.length % 2) taps.push(-1); // a zero tap pairs the last one
  const n = taps.length / 2;
  const size = w * h * 3;
  const conv = instanceFor(size > KEEP_SCRATCH_ELEMENTS);
  const pairs = align(conv.heapBase()), ptrs = align(pairs + 64 * n), src = align(ptrs + 8 * n), out = align(src + size);
  const ring = align(out + size + 8);
  const mem = memoryUpTo(conv, ring + conv.ringBytes(w, r));
  const ints = new Int32Array(mem, pairs, 16 * n), chunks = new Int16Array(mem, pairs, 32 * n);
  for (let t = 0; t < 2 * n; t++) {
    const k = taps[t], pair = t >> 1, lane = t & 1;
    // The weight as an integer multiple of 2^-37 (exact: isExactConvolution), in 13-bit chunks.
    const W = k < 0 ? 0 : kernel[k] * 2 ** 37;
    const c0 = Math.floor(W / 2 ** 26), c1 = Math.floor((W - c0 * 2 ** 26) / 2 ** 13), c2 = W - c0 * 2 ** 26 - c1 * 2 ** 13;
    ints[16 * pair + 2 * lane] = k < 0 ? 0 : (k % side) - r;
    ints[16 * pair + 2 * lane + 1] = k < 0 ? 0 : Math.floor(k / side) - r;
    for (let j = 0; j < 8; j += 2) {
      chunks[32 * pair + 8 + j + lane] = c0; chunks[32 * pair + 16 + j + lane] = c1; chunks[32 * pair + 24 + j + lane] = c2;
    }
  }
  new Uint8Array(mem, src, size).set(data);
  conv.convolve(src, out, ring, ptrs, pairs, n, w, h, r);
  return new Uint8Array(mem, out, size).slice();
}
