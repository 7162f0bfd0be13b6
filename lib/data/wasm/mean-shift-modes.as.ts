// AssemblyScript: mean_shift's mode search, each pixel's climb to the mode of its joint space-colour window (at most
// 5 steps; lib/data/corruptions.ts describes the filter). lib/data/mean-shift-modes.ts loads the module;
// scripts/build-wasm.ts compiles this into mean-shift-modes.wasm beside it.
//
// Two window samples a 128-bit vector (f64x2): each sample's distance is the scalar search's arithmetic in its order
// (no fused multiply-add in wasm SIMD), and an accepted sample is masked in rather than branched on. The colour sums
// are kept in two lanes, which is exact only for the inputs this search gets: every value a multiple of 2^-27 below
// 256 (bytes, or float32 means of at most 16 bytes, which are >= 1/16 when not 0), so a window's sum of at most 49
// samples stays below 2^14 and every partial sum, in any order, is an exact double (41 bits).

// A memo of climbing states: the state at the start of a step (step index, x, y, colour) decides the rest of the
// climb, so a climb that reaches a state an earlier climb passed through ends where that one ended. A direct-mapped
// table (a newer state takes the slot), stale by a generation stamp per call; used for 7x7 sample windows only
// (level high at 256 px: ~12% of the call here, as in the JS search before; round 6 found it a cost for 5x5 windows).
const MEMO_BITS: i32 = 14;
const MEMO_SLOTS: i32 = 1 << MEMO_BITS;

/**
 * Bytes of memory `modes` uses for an image of w x h pixels searched with spatial radius sp, from `lay` on (the
 * rearranged image), excluding the memo and the input and output.
 */
export function layoutBytes(w: i32, h: i32, sp: i32): i32 {
  const step = max(1, (sp + 2) / 3);
  const L = (w + step - 1) / step;
  return (h * 3 * step * L + 2) * 8;
}

/** Bytes of the memo tables (stamp, pos, step, val). */
export function memoBytes(): i32 {
  return 9 * MEMO_SLOTS + 48 * MEMO_SLOTS;
}

/**
 * The mode colour of every pixel. src: w*h*3 interleaved float64 values; out: w*h*3 float32; lay: scratch of
 * layoutBytes; memo: memoBytes, kept across calls (gen, a stamp no slot from an earlier call holds, > 0).
 */
export function modes(src: usize, out: usize, lay: usize, memo: usize, w: i32, h: i32, sp: i32, sr: i32, gen: i32): void {
  const step = max(1, (sp + 2) / 3);
  const L = (w + step - 1) / step;
  const chStride = step * L, rowStride = 3 * chStride;
  // The image rearranged: per row, per channel, per column residue mod step, the columns r, r + step, ...
  // contiguous, so a window row's samples (step apart) are consecutive doubles.
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = src + (<usize>((y * w + x) * 3) << 3);
      const d = lay + (<usize>(y * rowStride + (x % step) * L + x / step) << 3);
      store<f64>(d, load<f64>(s));
      store<f64>(d + (<usize>chStride << 3), load<f64>(s, 8));
      store<f64>(d + (<usize>(2 * chStride) << 3), load<f64>(s, 16));
    }
  }
  const sr2 = <f64>sr * <f64>sr;
  const SR2 = f64x2.splat(sr2);
  const useMemo = sp / step >= 3;
  const half = (sp / step) * step, full = 2 * (sp / step) + 1;
  const stamp = memo, mpos = memo + (<usize>MEMO_SLOTS << 2), mstep = memo + (<usize>MEMO_SLOTS << 3), mval = memo + (<usize>MEMO_SLOTS * 9);
  const cOff = <usize>chStride << 3;
  const pRow = <usize>(step * rowStride) << 3;
  const J01 = i64x2(0, 1), TWO = i64x2.splat(2), LANE0 = i64x2(-1, 0);
  const slots = memory.data(4 * 5);
  for (let y0 = 0; y0 < h; y0++) {
    for (let x0 = 0; x0 < w; x0++) {
      let x = x0, y = y0;
      const k0 = (y0 * w + x0) * 3;
      const s0p = src + (<usize>k0 << 3);
      let c0 = load<f64>(s0p), c1 = load<f64>(s0p, 8), c2 = load<f64>(s0p, 16);
      let nslots = 0;
      for (let it = 0; it < 5; it++) {
        if (useMemo && it > 0) {
          const pos = y * w + x;
          const slot = <i32>(<u32>((pos * 5 + it) * <i32>0x9e3779b1) >>> (32 - MEMO_BITS));
          const v = mval + (<usize>slot * 48);
          if (load<i32>(stamp + (<usize>slot << 2)) == gen && load<i32>(mpos + (<usize>slot << 2)) == pos && <i32>load<u8>(mstep + <usize>slot) == it
            && load<f64>(v) == c0 && load<f64>(v, 8) == c1 && load<f64>(v, 16) == c2) {
            c0 = load<f64>(v, 24); c1 = load<f64>(v, 32); c2 = load<f64>(v, 40);
            break;
          }
          store<i32>(stamp + (<usize>slot << 2), gen); store<i32>(mpos + (<usize>slot << 2), pos); store<u8>(mstep + <usize>slot, <u8>it);
          store<f64>(v, c0); store<f64>(v, c1, 8); store<f64>(v, c2, 16); store<f64>(v, NaN, 24);
          store<i32>(slots + (<usize>nslots << 2), slot);
          nslots++;
        }
        const ya = y - sp < 0 ? 0 : y - sp, yb = y + sp > h - 1 ? h - 1 : y + sp;
        const xa = x - sp < 0 ? 0 : x - sp, xb = x + sp > w - 1 ? w - 1 : x + sp;
        const ys = y < sp ? y - ((y - ya) / step) * step : y - half;
        const xs = x < sp ? x - ((x - xa) / step) * step : x - half;
        const nxs = x >= sp && x + sp < w ? full : (xb - xs) / step + 1;
        const npairs = nxs >> 1, odd = nxs & 1;
        const C0 = f64x2.splat(c0), C1 = f64x2.splat(c1), C2 = f64x2.splat(c2);
        let S0 = f64x2.splat(0), S1 = f64x2.splat(0), S2 = f64x2.splat(0), E = i64x2.splat(0);
        let tq: usize = 0, tenc: i64 = 0;
        let p = lay + (<usize>(ys * rowStride + (xs % step) * L + xs / step) << 3);
        // Per accepted sample, E adds (yy << 16) + (1 << 10) + j: the sums of rows, the count and the column
        // indices in one integer (j sums to < 1024, the count to < 64).
        for (let yy = ys; yy <= yb; yy += step, p += pRow) {
          let EJ = i64x2.add(i64x2.splat((<i64>yy << 16) | 1024), J01);
          let q = p;
          for (let k = 0; k < npairs; k++, q += 16) {
            const v0 = v128.load(q), v1 = v128.load(q + cOff), v2 = v128.load(q + 2 * cOff);
            const t0 = f64x2.sub(v0, C0), t1 = f64x2.sub(v1, C1), t2 = f64x2.sub(v2, C2);
            const m = f64x2.le(f64x2.add(f64x2.add(f64x2.mul(t0, t0), f64x2.mul(t1, t1)), f64x2.mul(t2, t2)), SR2);
            S0 = f64x2.add(S0, v128.and(v0, m));
            S1 = f64x2.add(S1, v128.and(v1, m));
            S2 = f64x2.add(S2, v128.and(v2, m));
            E = i64x2.add(E, v128.and(EJ, m));
            EJ = i64x2.add(EJ, TWO);
          }
          // An odd row's last sample waits for the next row's: the two in one vector.
          if (odd) {
            const enc = ((<i64>yy << 16) | 1024) + <i64>(nxs - 1);
            if (tq == 0) { tq = q; tenc = enc; continue; }
            const v0 = v128.load64_lane(q, v128.load64_zero(tq), 1);
            const v1 = v128.load64_lane(q + cOff, v128.load64_zero(tq + cOff), 1);
            const v2 = v128.load64_lane(q + 2 * cOff, v128.load64_zero(tq + 2 * cOff), 1);
            const t0 = f64x2.sub(v0, C0), t1 = f64x2.sub(v1, C1), t2 = f64x2.sub(v2, C2);
            const m = f64x2.le(f64x2.add(f64x2.add(f64x2.mul(t0, t0), f64x2.mul(t1, t1)), f64x2.mul(t2, t2)), SR2);
            S0 = f64x2.add(S0, v128.and(v0, m));
            S1 = f64x2.add(S1, v128.and(v1, m));
            S2 = f64x2.add(S2, v128.and(v2, m));
            E = i64x2.add(E, v128.and(i64x2(tenc, enc), m));
            tq = 0;
          }
        }
        // The last odd row's last sample alone, in lane 0.
        if (tq != 0) {
          const v0 = v128.load64_zero(tq), v1 = v128.load64_zero(tq + cOff), v2 = v128.load64_zero(tq + 2 * cOff);
          const t0 = f64x2.sub(v0, C0), t1 = f64x2.sub(v1, C1), t2 = f64x2.sub(v2, C2);
          const m = v128.and(f64x2.le(f64x2.add(f64x2.add(f64x2.mul(t0, t0), f64x2.mul(t1, t1)), f64x2.mul(t2, t2)), SR2), LANE0);
          S0 = f64x2.add(S0, v128.and(v0, m));
          S1 = f64x2.add(S1, v128.and(v1, m));
          S2 = f64x2.add(S2, v128.and(v2, m));
          E = i64x2.add(E, v128.and(i64x2.splat(tenc), m));
        }
        const tot = i64x2.extract_lane(E, 0) + i64x2.extract_lane(E, 1);
        const n = <i32>((tot >> 10) & 63);
        if (n == 0) break;
        const ir = <i32>(tot & 1023), sy = <i32>(tot >> 16);
        const sx = n * xs + step * ir;
        const nx = (2 * sx + n) / (2 * n), ny = (2 * sy + n) / (2 * n);
        const fn = <f64>n;
        const n0 = (f64x2.extract_lane(S0, 0) + f64x2.extract_lane(S0, 1)) / fn;
        const n1 = (f64x2.extract_lane(S1, 0) + f64x2.extract_lane(S1, 1)) / fn;
        const n2 = (f64x2.extract_lane(S2, 0) + f64x2.extract_lane(S2, 1)) / fn;
        const moved = <f64>abs(nx - x) + <f64>abs(ny - y) + Math.abs(n0 - c0) + Math.abs(n1 - c1) + Math.abs(n2 - c2);
        x = nx; y = ny; c0 = n0; c1 = n1; c2 = n2;
        if (moved <= 1) break;
      }
      for (let q = 0; q < nslots; q++) {
        const v = mval + (<usize>load<i32>(slots + (<usize>q << 2)) * 48);
        if (isNaN(load<f64>(v, 24))) { store<f64>(v, c0, 24); store<f64>(v, c1, 32); store<f64>(v, c2, 40); }
      }
      const o = out + (<usize>k0 << 2);
      store<f32>(o, <f32>c0); store<f32>(o, <f32>c1, 4); store<f32>(o, <f32>c2, 8);
    }
  }
}

/** The first byte the caller may use. */
export function heapBase(): usize {
  return __heap_base;
}
