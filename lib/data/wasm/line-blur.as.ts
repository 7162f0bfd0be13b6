// AssemblyScript: lineBlurInto's sheared rows (lib/data/filters.ts, lineRows) for byte input and byte output where
// every running sum is exact (lineRows' `skip` condition), the same values in the same operations and order as the JS;
// lib/data/line-blur.ts loads the module; scripts/build-wasm.ts compiles this into line-blur.wasm beside it.
// The per-column and per-row tables (rowBase ... fOf) are lineRows', computed in JS and passed in; J and the two B
// rows are doubles here holding float32 values (the JS holds them in Float32Arrays: the same rounding, by demote).

/**
 * out (bytes, pixel (x, y) channel c at x sx + y sy + c) = the line blur of src (bytes, the same layout). Tables:
 * rowBase, lastX, firstX, lo, hi, colOf, baseOf: i32; rowF, fOf: f64 holding float32 values; jRow: 3W doubles;
 * bRows: 2 x 3 width doubles.
 */
export function lineRows(
  src: usize, out: usize, width: i32, height: i32, sx: i32, sy: i32, a: i32, e: f64, norm: f64, reach: i32, W: i32, H: i32,
  minBase: i32, maxBase: i32, rowBase: usize, rowF: usize, lastX: usize, firstX: usize, lo: usize, hi: usize,
  colOf: usize, baseOf: usize, fOf: usize, jRow: usize, bRows: usize,
): void {
  const rowLen = width * 3;
  let prevB = bRows, B = bRows + (<usize>rowLen << 3);
  const J = jRow;
  for (let jj = 0; jj < H; jj++) {
    const xe = load<i32>(lastX + (<usize>jj << 2));
    if (xe < 0) continue;
    const xs = load<i32>(firstX + (<usize>jj << 2));
    const us = xs + reach - a - 1, ue = min(W - 1, xe + reach + a + 1);
    const inside = jj + minBase >= 0 && jj + maxBase + 1 <= height - 1;
    for (let ui = us; ui <= ue; ui++) {
      const o = J + (<usize>(ui * 3) << 3);
      const cu = load<i32>(colOf + (<usize>ui << 2)), f = load<f64>(fOf + (<usize>ui << 3));
      let y0 = jj + load<i32>(baseOf + (<usize>ui << 2)), y1 = y0 + 1;
      if (!inside) {
        if (jj < load<i32>(lo + (<usize>ui << 2)) || jj > load<i32>(hi + (<usize>ui << 2))) {
          store<f64>(o, 0); store<f64>(o, 0, 8); store<f64>(o, 0, 16);
          continue;
        }
        y0 = y0 < 0 ? 0 : y0 >= height ? height - 1 : y0;
        y1 = y1 < 0 ? 0 : y1 >= height ? height - 1 : y1;
      }
      const p = src + <usize>(y0 * sy + cu), q = src + <usize>(y1 * sy + cu);
      const p0 = <f64>load<u8>(p), p1 = <f64>load<u8>(p, 1), p2 = <f64>load<u8>(p, 2);
      store<f64>(o, <f64><f32>(p0 + (<f64>load<u8>(q) - p0) * f));
      store<f64>(o, <f64><f32>(p1 + (<f64>load<u8>(q, 1) - p1) * f), 8);
      store<f64>(o, <f64><f32>(p2 + (<f64>load<u8>(q, 2) - p2) * f), 16);
    }
    let acc0: f64 = 0, acc1: f64 = 0, acc2: f64 = 0;
    for (let u = xs + reach - a; u <= xs + reach + a; u++) {
      const q = J + (<usize>(u * 3) << 3);
      acc0 += load<f64>(q); acc1 += load<f64>(q, 8); acc2 += load<f64>(q, 16);
    }
    for (let x = xs; x <= xe; x++) {
      const b = B + (<usize>(x * 3) << 3), l = J + (<usize>((x + reach - a - 1) * 3) << 3), r = J + (<usize>((x + reach + a + 1) * 3) << 3);
      store<f64>(b, <f64><f32>((acc0 + e * (load<f64>(l) + load<f64>(r))) * norm));
      store<f64>(b, <f64><f32>((acc1 + e * (load<f64>(l, 8) + load<f64>(r, 8))) * norm), 8);
      store<f64>(b, <f64><f32>((acc2 + e * (load<f64>(l, 16) + load<f64>(r, 16))) * norm), 16);
      if (x + 1 < width) {
        acc0 += load<f64>(r) - load<f64>(l, 24);
        acc1 += load<f64>(r, 8) - load<f64>(l, 32);
        acc2 += load<f64>(r, 16) - load<f64>(l, 40);
      }
    }
    for (let x = xs; x <= xe; x++) {
      const y = jj - 1 - load<i32>(rowBase + (<usize>x << 2));
      if (y < 0 || y >= height) continue;
      const f = load<f64>(rowF + (<usize>x << 3));
      const pb = prevB + (<usize>(x * 3) << 3), nb = B + (<usize>(x * 3) << 3);
      const o = out + <usize>(y * sy + x * sx);
      const v0 = load<f64>(pb), v1 = load<f64>(pb, 8), v2 = load<f64>(pb, 16);
      store<u8>(o, toByte(<f64><f32>(v0 + (load<f64>(nb) - v0) * f)));
      store<u8>(o, toByte(<f64><f32>(v1 + (load<f64>(nb, 8) - v1) * f)), 1);
      store<u8>(o, toByte(<f64><f32>(v2 + (load<f64>(nb, 16) - v2) * f)), 2);
    }
    const t = prevB; prevB = B; B = t;
  }
}

/** A Uint8ClampedArray store: clamped to 0..255, rounded half to even. */
// @ts-ignore: decorator
@inline function toByte(v: f64): u8 {
  return v <= 0 ? 0 : v >= 255 ? 255 : <u8>nearest(v);
}

/** The first byte the caller may use. */
export function heapBase(): usize {
  return __heap_base;
}
