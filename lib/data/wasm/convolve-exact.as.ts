// AssemblyScript: libvips' float convolution of an interleaved RGB byte image by a sparse kernel (sharp `convolve`,
// edges replicated, the float result cast to bytes), for kernels where doubles give libvips' bytes exactly:
// lib/data/convolve-exact.ts loads the module and checks that condition; scripts/build-wasm.ts compiles this into
// convolve-exact.wasm beside it.
//
// Every value of a row is convolved alike (the taps' offsets are whole pixels, 3 values), so the row is one run of
// 3w values: 16 outputs a block, two a vector (f64x2), eight accumulators, the taps in the inner loop. The sum of a
// value's products is exact in any order (the caller's condition), so the lanes and the tap order are free; each sum
// is rounded to float32 (libvips' float output), truncated and saturated to 0..255 (its cast to bytes).

/** Bytes of the row ring `convolve` uses for a w px wide image and kernel radius r (2r + 1 padded rows, and slack). */
export function ringBytes(w: i32, r: i32): i32 {
  return ((2 * r + 1) * (w + 2 * r) * 3 + 16) * 8;
}

/**
 * out (w*h*3 bytes and 16 bytes of slack) = src (w*h*3 bytes) convolved by the n taps at `taps` (per tap: dx i32,
 * dy i32, weight f64; |dx|, |dy| <= r), edges replicated. ring: ringBytes(w, r); ptrs: 4n bytes of scratch.
 */
export function convolve(src: usize, out: usize, ring: usize, ptrs: usize, taps: usize, n: i32, w: i32, h: i32, r: i32): void {
  const S = 2 * r + 1;
  const rowVals = (w + 2 * r) * 3;
  const rowBytes = <usize>rowVals << 3;
  const nv = w * 3;
  // Padded row p (source row clamp(p - r)) lives in ring slot p % S. Rows 0 .. 2r before the first output row.
  for (let p = 0; p < 2 * r; p++) fillRow(src, ring + <usize>(p % S) * rowBytes, p - r, w, h, r);
  for (let y = 0; y < h; y++) {
    const p = y + 2 * r;
    fillRow(src, ring + <usize>(p % S) * rowBytes, p - r, w, h, r);
    // Output (x, y) reads padded row y + r + dy, padded column x + r + dx.
    for (let t = 0; t < n; t++) {
      const tp = taps + (<usize>t << 4);
      const dx = load<i32>(tp), dy = load<i32>(tp, 4);
      store<usize>(ptrs + (<usize>t << 2), ring + <usize>((y + r + dy) % S) * rowBytes + (<usize>((r + dx) * 3) << 3));
    }
    const o = out + <usize>(y * nv);
    for (let x = 0; x < nv; x += 16) {
      const xo = <usize>x << 3;
      let a0 = f64x2.splat(0), a1 = f64x2.splat(0), a2 = f64x2.splat(0), a3 = f64x2.splat(0);
      let a4 = f64x2.splat(0), a5 = f64x2.splat(0), a6 = f64x2.splat(0), a7 = f64x2.splat(0);
      for (let t = 0; t < n; t++) {
        const wt = v128.load64_splat(taps + (<usize>t << 4), 8);
        const q = load<usize>(ptrs + (<usize>t << 2)) + xo;
        a0 = f64x2.add(a0, f64x2.mul(wt, v128.load(q)));
        a1 = f64x2.add(a1, f64x2.mul(wt, v128.load(q, 16)));
        a2 = f64x2.add(a2, f64x2.mul(wt, v128.load(q, 32)));
        a3 = f64x2.add(a3, f64x2.mul(wt, v128.load(q, 48)));
        a4 = f64x2.add(a4, f64x2.mul(wt, v128.load(q, 64)));
        a5 = f64x2.add(a5, f64x2.mul(wt, v128.load(q, 80)));
        a6 = f64x2.add(a6, f64x2.mul(wt, v128.load(q, 96)));
        a7 = f64x2.add(a7, f64x2.mul(wt, v128.load(q, 112)));
      }
      // To float32 (rounded to nearest), truncated, saturated to 0..255; the last block may write up to 15 bytes
      // past the row, which the next row overwrites (or the slack takes).
      const b0 = i32x4.trunc_sat_f32x4_u(pack(a0, a1)), b1 = i32x4.trunc_sat_f32x4_u(pack(a2, a3));
      const b2 = i32x4.trunc_sat_f32x4_u(pack(a4, a5)), b3 = i32x4.trunc_sat_f32x4_u(pack(a6, a7));
      v128.store(o + <usize>x, i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(b0, b1), i16x8.narrow_i32x4_u(b2, b3)));
    }
  }
}

/** Two f64x2 rounded to float32, as one f32x4. */
// @ts-ignore: decorator
@inline function pack(a: v128, b: v128): v128 {
  return v128.shuffle<f32>(f32x4.demote_f64x2_zero(a), f32x4.demote_f64x2_zero(b), 0, 1, 4, 5);
}

/** Source row clamp(sy) as doubles at d, its first and last pixels repeated r times either side. */
function fillRow(src: usize, d: usize, sy: i32, w: i32, h: i32, r: i32): void {
  const s = src + <usize>((sy < 0 ? 0 : sy > h - 1 ? h - 1 : sy) * w * 3);
  const r0 = <f64>load<u8>(s), g0 = <f64>load<u8>(s, 1), b0 = <f64>load<u8>(s, 2);
  const e = s + <usize>(w * 3 - 3);
  const r1 = <f64>load<u8>(e), g1 = <f64>load<u8>(e, 1), b1 = <f64>load<u8>(e, 2);
  let q = d;
  for (let k = 0; k < r; k++, q += 24) { store<f64>(q, r0); store<f64>(q, g0, 8); store<f64>(q, b0, 16); }
  // Eight bytes a step (widened to i32, converted two at a time), the rest one by one: a step never writes past the row.
  const n = w * 3;
  let k = 0;
  for (; k + 8 <= n; k += 8, q += 64) {
    const b = i16x8.extend_low_i8x16_u(v128.load64_zero(s + <usize>k));
    const lo = i32x4.extend_low_i16x8_u(b), hi = i32x4.extend_high_i16x8_u(b);
    v128.store(q, f64x2.convert_low_i32x4_u(lo));
    v128.store(q, f64x2.convert_low_i32x4_u(v128.shuffle<i32>(lo, lo, 2, 3, 2, 3)), 16);
    v128.store(q, f64x2.convert_low_i32x4_u(hi), 32);
    v128.store(q, f64x2.convert_low_i32x4_u(v128.shuffle<i32>(hi, hi, 2, 3, 2, 3)), 48);
  }
  for (; k < n; k++, q += 8) store<f64>(q, <f64>load<u8>(s + <usize>k));
  for (let k = 0; k < r; k++, q += 24) { store<f64>(q, r1); store<f64>(q, g1, 8); store<f64>(q, b1, 16); }
}

/** The first byte the caller may use. */
export function heapBase(): usize {
  return __heap_base;
}
