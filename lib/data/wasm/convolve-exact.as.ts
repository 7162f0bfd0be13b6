// AssemblyScript: libvips' float convolution of an interleaved RGB byte image by a sparse kernel (sharp `convolve`,
// edges replicated, the float result cast to bytes), for kernels where the exact sum gives libvips' bytes:
// lib/data/convolve-exact.ts loads the module and checks that condition; scripts/build-wasm.ts compiles this into
// convolve-exact.wasm beside it.
//
// The sum of a value's products is exact (the caller's condition): every weight is an integer multiple of 2^-37,
// given here as that integer W in three 13-bit chunks (W = c0 2^26 + c1 2^13 + c2), so the sum is three integer sums of
// chunk x byte, done in 16-bit lanes two taps at a time (`i32x4.dot_i16x8_s` on the two taps' values interleaved),
// joined in doubles (exact: below 2^46) and scaled by 2^-37. Every value of a row is convolved alike (a tap's offset is
// whole pixels, 3 values), so a row is one run of 3w values, 8 a block. Each sum is rounded to float32 (libvips' float
// output), truncated and saturated to 0..255 (its cast to bytes).

/** Bytes of the row ring `convolve` uses for a w px wide image and kernel radius r (2r + 1 padded rows, and slack). */
export function ringBytes(w: i32, r: i32): i32 {
  return ((2 * r + 1) * (w + 2 * r) * 3 + 16) * 2;
}

/**
 * out (w*h*3 bytes and 8 bytes of slack) = src (w*h*3 bytes) convolved by the taps at `pairs`, two a pair (n pairs
 * of 64 bytes: dx, dy of the first tap and of the second, i32; then the chunks c0, c1, c2 as i16x8 vectors holding
 * the first tap's chunk in even lanes and the second's in odd lanes; |dx|, |dy| <= r), edges replicated.
 * ring: ringBytes(w, r); ptrs: 8n bytes of scratch.
 */
export function convolve(src: usize, out: usize, ring: usize, ptrs: usize, pairs: usize, n: i32, w: i32, h: i32, r: i32): void {
  const S = 2 * r + 1;
  const rowBytes = <usize>((w + 2 * r) * 3) << 1;
  const nv = w * 3;
  const K26 = f64x2.splat(67108864), K13 = f64x2.splat(8192), SCALE = f64x2.splat(1.0 / 137438953472.0);
  // Padded row p (source row clamp(p - r)) lives in ring slot p % S. Rows 0 .. 2r before the first output row.
  for (let p = 0; p < 2 * r; p++) fillRow(src, ring + <usize>(p % S) * rowBytes, p - r, w, h, r);
  for (let y = 0; y < h; y++) {
    const p = y + 2 * r;
    fillRow(src, ring + <usize>(p % S) * rowBytes, p - r, w, h, r);
    // Output (x, y) reads padded row y + r + dy, padded column x + r + dx.
    for (let t = 0; t < 2 * n; t++) {
      const tp = pairs + (<usize>(t >> 1) << 6) + (<usize>(t & 1) << 3);
      const dx = load<i32>(tp), dy = load<i32>(tp, 4);
      store<usize>(ptrs + (<usize>t << 2), ring + <usize>((y + r + dy) % S) * rowBytes + (<usize>((r + dx) * 3) << 1));
    }
    const o = out + <usize>(y * nv);
    for (let x = 0; x < nv; x += 8) {
      const xo = <usize>x << 1;
      let a0 = i32x4.splat(0), b0 = i32x4.splat(0), a1 = i32x4.splat(0), b1 = i32x4.splat(0), a2 = i32x4.splat(0), b2 = i32x4.splat(0);
      for (let t = 0; t < n; t++) {
        const pp = pairs + (<usize>t << 6), q = ptrs + (<usize>t << 3);
        const u = v128.load(load<usize>(q) + xo), v = v128.load(load<usize>(q, 4) + xo);
        const lo = v128.shuffle<i16>(u, v, 0, 8, 1, 9, 2, 10, 3, 11), hi = v128.shuffle<i16>(u, v, 4, 12, 5, 13, 6, 14, 7, 15);
        const w0 = v128.load(pp, 16), w1 = v128.load(pp, 32), w2 = v128.load(pp, 48);
        a0 = i32x4.add(a0, i32x4.dot_i16x8_s(lo, w0)); b0 = i32x4.add(b0, i32x4.dot_i16x8_s(hi, w0));
        a1 = i32x4.add(a1, i32x4.dot_i16x8_s(lo, w1)); b1 = i32x4.add(b1, i32x4.dot_i16x8_s(hi, w1));
        a2 = i32x4.add(a2, i32x4.dot_i16x8_s(lo, w2)); b2 = i32x4.add(b2, i32x4.dot_i16x8_s(hi, w2));
      }
      const s0 = join(a0, a1, a2, K26, K13, SCALE), s1 = join(v128.shuffle<i32>(a0, a0, 2, 3, 2, 3), v128.shuffle<i32>(a1, a1, 2, 3, 2, 3), v128.shuffle<i32>(a2, a2, 2, 3, 2, 3), K26, K13, SCALE);
      const s2 = join(b0, b1, b2, K26, K13, SCALE), s3 = join(v128.shuffle<i32>(b0, b0, 2, 3, 2, 3), v128.shuffle<i32>(b1, b1, 2, 3, 2, 3), v128.shuffle<i32>(b2, b2, 2, 3, 2, 3), K26, K13, SCALE);
      const c0 = i32x4.trunc_sat_f32x4_u(pack(s0, s1)), c1 = i32x4.trunc_sat_f32x4_u(pack(s2, s3));
      // The last block may write up to 7 bytes past the row, which the next row overwrites (or the slack takes).
      v128.store64_lane(o + <usize>x, i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(c0, c1), c0), 0);
    }
  }
}

/** Lanes 0 and 1 of the three chunk sums as the exact sums (c0 2^26 + c1 2^13 + c2) 2^-37, two doubles. */
// @ts-ignore: decorator
@inline function join(a0: v128, a1: v128, a2: v128, K26: v128, K13: v128, SCALE: v128): v128 {
  const s = f64x2.add(f64x2.add(f64x2.mul(f64x2.convert_low_i32x4_s(a0), K26), f64x2.mul(f64x2.convert_low_i32x4_s(a1), K13)), f64x2.convert_low_i32x4_s(a2));
  return f64x2.mul(s, SCALE);
}

/** Two f64x2 rounded to float32, as one f32x4. */
// @ts-ignore: decorator
@inline function pack(a: v128, b: v128): v128 {
  return v128.shuffle<f32>(f32x4.demote_f64x2_zero(a), f32x4.demote_f64x2_zero(b), 0, 1, 4, 5);
}

/** Source row clamp(sy) as 16-bit values at d, its first and last pixels repeated r times either side. */
function fillRow(src: usize, d: usize, sy: i32, w: i32, h: i32, r: i32): void {
  const s = src + <usize>((sy < 0 ? 0 : sy > h - 1 ? h - 1 : sy) * w * 3);
  const r0 = <u16>load<u8>(s), g0 = <u16>load<u8>(s, 1), b0 = <u16>load<u8>(s, 2);
  const e = s + <usize>(w * 3 - 3);
  const r1 = <u16>load<u8>(e), g1 = <u16>load<u8>(e, 1), b1 = <u16>load<u8>(e, 2);
  let q = d;
  for (let k = 0; k < r; k++, q += 6) { store<u16>(q, r0); store<u16>(q, g0, 2); store<u16>(q, b0, 4); }
  // Eight bytes a step (widened), the rest one by one: a step never writes past the row.
  const n = w * 3;
  let k = 0;
  for (; k + 8 <= n; k += 8, q += 16) v128.store(q, i16x8.extend_low_i8x16_u(v128.load64_zero(s + <usize>k)));
  for (; k < n; k++, q += 2) store<u16>(q, <u16>load<u8>(s + <usize>k));
  for (let k = 0; k < r; k++, q += 6) { store<u16>(q, r1); store<u16>(q, g1, 2); store<u16>(q, b1, 4); }
}

/** The first byte the caller may use. */
export function heapBase(): usize {
  return __heap_base;
}
