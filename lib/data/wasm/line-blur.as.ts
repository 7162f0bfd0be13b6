// AssemblyScript: lineBlurInto's sheared rows (lib/data/filters.ts, lineRows) for byte input and byte output where
// every running sum is exact (lineRows' `skip` condition): the JS's values, each rounded where the JS rounds (its
// Float32Array and Uint8ClampedArray stores); lib/data/line-blur.ts loads the module; scripts/build-wasm.ts compiles
// this into line-blur.wasm beside it. The per-column and per-row tables (rowBase ... fOf) are lineRows', computed in
// JS and passed in; J and the two B rows are doubles here holding float32 values. The only operations in another order
// are the running sums', exact in any order under that condition.

/** Doubles of the J row scratch: 3 a sheared column, and slack for B's last step. */
export function jRowValues(W: i32): i32 {
  return 3 * W + 24;
}

/** Doubles a row of B takes: 3 a column, and slack for its last step. */
export function bRowStride(width: i32): i32 {
  return 3 * width + 8;
}

/**
 * out (bytes, pixel (x, y) channel c at x sx + y sy + c) = the line blur of src (bytes, the same layout). Tables:
 * rowBase, lastX, firstX, lo, hi, colOf, baseOf: i32; rowF, fOf: f64 holding float32 values; jRow: jRowValues(W)
 * doubles; bRows: 2 bRowStride(width) doubles, then 4W bytes of scratch. src is followed by at least a byte of memory.
 */
export function lineRows(
  src: usize, out: usize, width: i32, height: i32, sx: i32, sy: i32, a: i32, e: f64, norm: f64, reach: i32, W: i32, H: i32,
  minBase: i32, maxBase: i32, rowBase: usize, rowF: usize, lastX: usize, firstX: usize, lo: usize, hi: usize,
  colOf: usize, baseOf: usize, fOf: usize, jRow: usize, bRows: usize,
): void {
  let prevB = bRows, B = bRows + (<usize>bRowStride(width) << 3);
  const J = jRow;
  // Column ui's first source row's offset, less the row's: baseOf sy + colOf.
  const offs = bRows + (<usize>(2 * bRowStride(width)) << 3);
  for (let ui = 0; ui < W; ui++) {
    store<i32>(offs + (<usize>ui << 2), load<i32>(baseOf + (<usize>ui << 2)) * sy + load<i32>(colOf + (<usize>ui << 2)));
  }
  for (let jj = 0; jj < H; jj++) {
    const xe = load<i32>(lastX + (<usize>jj << 2));
    if (xe < 0) continue;
    const xs = load<i32>(firstX + (<usize>jj << 2));
    const us = xs + reach - a - 1, ue = min(W - 1, xe + reach + a + 1);
    if (jj + minBase >= 0 && jj + maxBase + 1 <= height - 1) {
      // Every column's two source rows are inside the image: no clamping.
      const row = src + <usize>(jj * sy);
      for (let ui = us; ui <= ue; ui++) {
        const p = row + <usize>load<i32>(offs + (<usize>ui << 2));
        jPixel(J + <usize>(ui * 24), p, p + <usize>sy, load<f64>(fOf + (<usize>ui << 3)));
      }
    } else {
      for (let ui = us; ui <= ue; ui++) {
        const o = J + <usize>(ui * 24);
        if (jj < load<i32>(lo + (<usize>ui << 2)) || jj > load<i32>(hi + (<usize>ui << 2))) {
          store<f64>(o, 0); store<f64>(o, 0, 8); store<f64>(o, 0, 16);
          continue;
        }
        let y0 = jj + load<i32>(baseOf + (<usize>ui << 2)), y1 = y0 + 1;
        y0 = y0 < 0 ? 0 : y0 >= height ? height - 1 : y0;
        y1 = y1 < 0 ? 0 : y1 >= height ? height - 1 : y1;
        const cu = load<i32>(colOf + (<usize>ui << 2));
        jPixel(o, src + <usize>(y0 * sy + cu), src + <usize>(y1 * sy + cu), load<f64>(fOf + (<usize>ui << 3)));
      }
    }
    // B two pixels a step: the running sums of pixels x and x + 1's six values in three vectors (value k of the row
    // sums J[k + 3 (reach + i)], i = -a .. a), stepped by two pixels. The sums are exact (the caller's condition), so
    // they equal the JS's one-pixel steps (a step adds its two differences' sum, also exact: one add on the sums'
    // dependency chain per two pixels); B itself is the JS's expression, lane by lane. A step past xe writes B and
    // reads J into the rows' slack.
    let s0: f64 = 0, s1: f64 = 0, s2: f64 = 0, s3: f64 = 0, s4: f64 = 0, s5: f64 = 0;
    for (let u = xs + reach - a; u <= xs + reach + a; u++) {
      const q = J + (<usize>(u * 3) << 3);
      s0 += load<f64>(q); s1 += load<f64>(q, 8); s2 += load<f64>(q, 16);
      s3 += load<f64>(q, 24); s4 += load<f64>(q, 32); s5 += load<f64>(q, 40);
    }
    let A0 = f64x2(s0, s1), A1 = f64x2(s2, s3), A2 = f64x2(s4, s5);
    const E = f64x2.splat(e), NORM = f64x2.splat(norm);
    for (let x = xs; x <= xe; x += 2) {
      const b = B + (<usize>(x * 3) << 3), l = J + (<usize>((x + reach - a - 1) * 3) << 3), r = J + (<usize>((x + reach + a + 1) * 3) << 3);
      const l0 = v128.load(l), l1 = v128.load(l, 16), l2 = v128.load(l, 32);
      const r0 = v128.load(r), r1 = v128.load(r, 16), r2 = v128.load(r, 32);
      v128.store(b, toF32(f64x2.mul(f64x2.add(A0, f64x2.mul(E, f64x2.add(l0, r0))), NORM)));
      v128.store(b, toF32(f64x2.mul(f64x2.add(A1, f64x2.mul(E, f64x2.add(l1, r1))), NORM)), 16);
      v128.store(b, toF32(f64x2.mul(f64x2.add(A2, f64x2.mul(E, f64x2.add(l2, r2))), NORM)), 32);
      A0 = f64x2.add(A0, f64x2.add(f64x2.sub(r0, v128.load(l, 24)), f64x2.sub(v128.load(r, 24), v128.load(l, 48))));
      A1 = f64x2.add(A1, f64x2.add(f64x2.sub(r1, v128.load(l, 40)), f64x2.sub(v128.load(r, 40), v128.load(l, 64))));
      A2 = f64x2.add(A2, f64x2.add(f64x2.sub(r2, v128.load(l, 56)), f64x2.sub(v128.load(r, 56), v128.load(l, 80))));
    }
    for (let x = xs; x <= xe; x++) {
      const y = jj - 1 - load<i32>(rowBase + (<usize>x << 2));
      if (y < 0 || y >= height) continue;
      const f = load<f64>(rowF + (<usize>x << 3));
      const pb = prevB + (<usize>(x * 3) << 3), nb = B + (<usize>(x * 3) << 3);
      const o = out + <usize>(y * sy + x * sx);
      // The three channels in two vectors (the fourth lane is the next pixel's, unused): the JS's expression rounded
      // to float32, then stored as a Uint8ClampedArray does (rounded half to even, clamped).
      const F = f64x2.splat(f);
      const p01 = v128.load(pb), p2 = v128.load(pb, 16);
      const c01 = toByte2(toF32(f64x2.add(p01, f64x2.mul(f64x2.sub(v128.load(nb), p01), F))));
      const c2 = toByte2(toF32(f64x2.add(p2, f64x2.mul(f64x2.sub(v128.load(nb, 16), p2), F))));
      const bytes = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(v128.shuffle<i32>(c01, c2, 0, 1, 4, 5), c01), c01);
      v128.store16_lane(o, bytes, 0);
      v128.store8_lane(o, bytes, 2, 2);
    }
    const t = prevB; prevB = B; B = t;
  }
}

/**
 * J's three values of one sheared pixel, p + (q - p) f per channel rounded to float32 (the JS's expression: exact in
 * doubles, so one rounding), from the bytes at p and q; four doubles stored (the fourth lands on the next pixel's
 * first value, written after it, or in the slack).
 */
// @ts-ignore: decorator
@inline function jPixel(o: usize, p: usize, q: usize, f: f64): void {
  const P = i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(p)));
  const D = i32x4.sub(i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(q))), P);
  const F = f64x2.splat(f);
  const Ph = v128.shuffle<i32>(P, P, 2, 3, 2, 3), Dh = v128.shuffle<i32>(D, D, 2, 3, 2, 3);
  v128.store(o, toF32(f64x2.add(f64x2.convert_low_i32x4_s(P), f64x2.mul(f64x2.convert_low_i32x4_s(D), F))));
  v128.store(o, toF32(f64x2.add(f64x2.convert_low_i32x4_s(Ph), f64x2.mul(f64x2.convert_low_i32x4_s(Dh), F))), 16);
}

/** Both lanes rounded to float32 (a Float32Array store). */
// @ts-ignore: decorator
@inline function toF32(v: v128): v128 {
  return f64x2.promote_low_f32x4(f32x4.demote_f64x2_zero(v));
}

/** Both lanes as a Uint8ClampedArray stores them (rounded half to even, clamped to 0..255), as i32 in lanes 0 and 1. */
// @ts-ignore: decorator
@inline function toByte2(v: v128): v128 {
  return i32x4.trunc_sat_f64x2_u_zero(f64x2.pmin(f64x2.splat(255), f64x2.pmax(f64x2.splat(0), f64x2.nearest(v))));
}

/** The first byte the caller may use. */
export function heapBase(): usize {
  return __heap_base;
}
