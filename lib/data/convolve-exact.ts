// libvips' float convolution (sharp `convolve`: edges replicated, the float result cast to bytes) replicated exactly in
// WebAssembly SIMD, for the kernels where that is provable (motion_blur's line kernels; round 18 mb18). Source:
// lib/data/wasm/convolve-exact.as.ts (AssemblyScript), compiled into the committed lib/data/wasm/convolve-exact.wasm
// by scripts/build-wasm.ts.
import { readFileSync } from 'node:fs';
import type { RgbImage } from './image.ts';
import { KEEP_SCRATCH_ELEMENTS } from './filters.ts';

interface Convolution {
  memory: WebAssembly.Memory;
  heapBase(): number;
  ringBytes(w: number, r: number): number;
  convolve(src: number, out: number, ring: number, ptrs: number, taps: number, n: number, w: number, h: number, r: number): void;
}

// Compiled at the first call, not at import (a process that never convolves this way never reads the file).
let wasmModule: WebAssembly.Module | undefined;
const instantiate = () => {
  wasmModule ??= new WebAssembly.Module(readFileSync(new URL('./wasm/convolve-exact.wasm', import.meta.url)));
  return new WebAssembly.Instance(wasmModule, {}).exports as unknown as Convolution;
};
// One instance kept for images up to KEEP_SCRATCH_ELEMENTS values (wasm memory never shrinks); a larger image gets an
// instance of its own, dropped after the call.
let kept: Convolution | undefined;
const align = (n: number) => (n + 15) & ~15;

/**
 * Whether convolveExactRgb gives libvips' bytes for this kernel. libvips sums weight x byte in doubles and rounds the
 * sum to float32; the replica's sum, in another order, is the same double when every partial sum is exact: weights
 * that are 0 or float32 values >= 2^-14 (multiples of 2^-37, so every product is one) whose sum x 255 is below 2^8
 * (every partial sum then fits in 8 + 37 = 45 bits).
 */
export function isExactConvolution(kernel: Float32Array): boolean {
  let total = 0;
  for (const v of kernel) {
    if (v !== 0 && !(v >= 2 ** -14)) return false;
    total += v;
  }
  return total * 255 < 256;
}

/**
 * libvips' convolution of an RGB image by a square kernel (odd side) as sharp gives it (`convolve` with scale 1,
 * edges replicated, cast to bytes: min(255, trunc(fround(sum)))), for a kernel isExactConvolution accepts.
 */
export function convolveExactRgb(img: RgbImage, kernel: Float32Array, side: number): Uint8Array {
  const { width: w, height: h, data } = img;
  if (side % 2 !== 1 || kernel.length !== side * side) throw new Error(`convolveExactRgb: kernel must be side x side with odd side, got ${kernel.length} for ${side}`);
  if (!isExactConvolution(kernel)) throw new Error('convolveExactRgb: the kernel needs weights 0 or >= 2^-14 summing to less than 256/255');
  if (data.length !== w * h * 3) throw new Error(`convolveExactRgb: image data has ${data.length} bytes, expected ${w * h * 3} for ${w}x${h}`);
  const r = (side - 1) >> 1;
  let n = 0;
  for (const v of kernel) if (v !== 0) n++;
  const size = w * h * 3;
  const large = size > KEEP_SCRATCH_ELEMENTS;
  const conv = large ? instantiate() : (kept ??= instantiate());
  const taps = align(conv.heapBase()), ptrs = align(taps + 16 * n), src = align(ptrs + 4 * n), out = align(src + size);
  const ring = align(out + size + 16), end = ring + conv.ringBytes(w, r), have = conv.memory.buffer.byteLength;
  if (end > have) conv.memory.grow(Math.ceil((end - have) / 65536));
  const mem = conv.memory.buffer;
  const ints = new Int32Array(mem, taps, 4 * n), weights = new Float64Array(mem, taps, 2 * n);
  for (let k = 0, t = 0; k < kernel.length; k++) {
    if (kernel[k] === 0) continue;
    ints[4 * t] = (k % side) - r; ints[4 * t + 1] = Math.floor(k / side) - r; weights[2 * t + 1] = kernel[k];
    t++;
  }
  new Uint8Array(mem, src, size).set(data);
  conv.convolve(src, out, ring, ptrs, taps, n, w, h, r);
  return new Uint8Array(mem, out, size).slice();
}
