// mean_shift's mode search in WebAssembly with 128-bit SIMD, two window samples a vector (the search 1.7-2.4x the JS one's,
// the corruption 1.5-1.8x: docs/performance-history/corruption.md, round 18). Source: lib/data/wasm/mean-shift-modes.as.ts (AssemblyScript),
// compiled into the committed lib/data/wasm/mean-shift-modes.wasm by scripts/build-wasm.ts.
import { KEEP_SCRATCH_ELEMENTS } from './filters.ts';
import { align16 as align, memoryUpTo, wasmInstances, type WasmExports } from './wasm-instances.ts';

interface Search extends WasmExports {
  memoBytes(): number;
  layoutBytes(w: number, h: number, sp: number): number;
  modes(src: number, out: number, lay: number, memo: number, w: number, h: number, sp: number, sr: number, gen: number): void;
}

// One instance kept for images up to KEEP_SCRATCH_ELEMENTS values (its memory, which never shrinks, holds the memo,
// the image and its modes); a larger image gets an instance of its own (wasm-instances.ts).
const instanceFor = wasmInstances<Search>(new URL('./wasm/mean-shift-modes.wasm', import.meta.url));
let gen = 0;

/**
 * The searched image: its values (bytes are converted exactly), or a function that writes them into the search's
 * own float64 input in WebAssembly memory (w * h * 3 values), so that they are not first made in an array of their
 * own and then copied there.
 */
export type SearchInput = Uint8Array | Float64Array | ((into: Float64Array) => void);

/**
 * The mean-shift mode colour of every pixel of an interleaved RGB image, into `out` (float32).
 * The values must be multiples of 2^-27 below 256 (bytes, or blockMeansRgb's float32 means of at most 16 bytes):
 * the search sums a window's samples in two lanes, which gives the sample-by-sample sum only because every partial
 * sum (at most 49 samples, below 2^14) is then exact.
 */
export function meanShiftModes(data: SearchInput, w: number, h: number, sp: number, sr: number, out = new Float32Array(w * h * 3)): Float32Array {
  const n = w * h * 3;
  const given = typeof data === 'function' ? n : data.length;
  if (given < n || out.length < n) throw new Error(`meanShiftModes: buffers of ${given} and ${out.length} values for ${w}x${h}`);
  const large = n > KEEP_SCRATCH_ELEMENTS;
  const search = instanceFor(large);
  const memo = align(search.heapBase()), src = align(memo + search.memoBytes()), dst = align(src + n * 8), lay = align(dst + n * 4);
  memoryUpTo(search, lay + search.layoutBytes(w, h, sp));
  // A new stamp per call on the kept instance: the memo's slots from earlier calls are stale (the memo zeroed when
  // the stamps wrap). A new instance's memory is zeros: stamp 1.
  let stamp = 1;
  if (!large) {
    if (++gen > 0x3fffffff) { gen = 1; new Uint8Array(search.memory.buffer, memo, search.memoBytes()).fill(0); }
    stamp = gen;
  }
  const into = new Float64Array(search.memory.buffer, src, n);
  if (typeof data === 'function') data(into);
  else into.set(data.subarray(0, n));
  search.modes(src, dst, lay, memo, w, h, sp, sr, stamp);
  out.set(new Float32Array(search.memory.buffer, dst, n));
  return out;
}
