// lineBlurInto's sheared rows for byte input and output where every running sum is exact, in WebAssembly SIMD
// (motion_blur's high level; round 18 mb18): the JS lineRows' bytes (its values, rounded where it rounds; the running
// sums, exact, two pixels a step). Source: lib/data/wasm/line-blur.as.ts (AssemblyScript), compiled into the committed
// lib/data/wasm/line-blur.wasm by scripts/build-wasm.ts.
import { KEEP_SCRATCH_ELEMENTS } from './filters.ts';
import { align16 as align, memoryUpTo, wasmInstances, type WasmExports } from './wasm-instances.ts';

interface LineBlur extends WasmExports {
  jRowValues(W: number): number;
  bRowStride(width: number): number;
  lineRows(
    src: number, out: number, width: number, height: number, sx: number, sy: number, a: number, e: number, norm: number, reach: number,
    W: number, H: number, minBase: number, maxBase: number, rowBase: number, rowF: number, lastX: number, firstX: number, lo: number,
    hi: number, colOf: number, baseOf: number, fOf: number, jRow: number, bRows: number,
  ): void;
}

// One instance kept for images up to KEEP_SCRATCH_ELEMENTS values, a larger image's own (wasm-instances.ts).
const instanceFor = wasmInstances<LineBlur>(new URL('./wasm/line-blur.wasm', import.meta.url));

/** lineRows' geometry and per-column / per-row tables (see lib/data/filters.ts). */
export interface LineRowsPlan {
  width: number; height: number; sx: number; sy: number; a: number; e: number; norm: number; reach: number; W: number; H: number;
  minBase: number; maxBase: number; rowBase: Int32Array; rowF: Float32Array; lastX: Int32Array; firstX: Int32Array;
  lo: Int32Array; hi: Int32Array; colOf: Int32Array; baseOf: Int32Array; fOf: Float32Array;
}

/** lineRows into `out` (bytes) from `src` (bytes), for a plan whose running sums may start at firstX (exact). */
export function lineRowsBytes(src: Uint8Array, out: Uint8ClampedArray, plan: LineRowsPlan): void {
  const { width, height, W, H } = plan;
  const n = width * height * 3;
  if (src.length !== n || out.length !== n) throw new Error(`lineRowsBytes: buffers of ${src.length} and ${out.length} bytes for ${width}x${height}`);
  const m = instanceFor(n > KEEP_SCRATCH_ELEMENTS);
  // Doubles first (8-byte aligned), then the ints and the bytes.
  const rowF = align(m.heapBase()), fOf = align(rowF + 8 * width), jRow = align(fOf + 8 * W), bRows = align(jRow + 8 * m.jRowValues(W));
  const rowBase = align(bRows + 16 * m.bRowStride(width) + 4 * W), lastX = align(rowBase + 4 * width), firstX = align(lastX + 4 * H);
  const lo = align(firstX + 4 * H), hi = align(lo + 4 * W), colOf = align(hi + 4 * W), baseOf = align(colOf + 4 * W);
  const srcAt = align(baseOf + 4 * W), outAt = align(srcAt + n);
  const mem = memoryUpTo(m, outAt + n);
  new Float64Array(mem, rowF, width).set(plan.rowF);
  new Float64Array(mem, fOf, W).set(plan.fOf);
  new Int32Array(mem, rowBase, width).set(plan.rowBase);
  new Int32Array(mem, lastX, H).set(plan.lastX);
  new Int32Array(mem, firstX, H).set(plan.firstX);
  new Int32Array(mem, lo, W).set(plan.lo);
  new Int32Array(mem, hi, W).set(plan.hi);
  new Int32Array(mem, colOf, W).set(plan.colOf);
  new Int32Array(mem, baseOf, W).set(plan.baseOf);
  new Uint8Array(mem, srcAt, n).set(src);
  m.lineRows(srcAt, outAt, width, height, plan.sx, plan.sy, plan.a, plan.e, plan.norm, plan.reach, W, H, plan.minBase, plan.maxBase,
    rowBase, rowF, lastX, firstX, lo, hi, colOf, baseOf, fOf, jRow, bRows);
  out.set(new Uint8Array(mem, outAt, n));
}
