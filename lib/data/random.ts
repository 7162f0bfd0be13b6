// Seeded randomness shared by the whole project: a small, fast PRNG (mulberry32 state stepping with a
// splitmix-style output mix), stable hashing of seed parts (run seed, sample id, group index, ...), and
// standard-normal fills for noise tensors. Everything here is pure and platform-independent: the same seed
// gives the same numbers on every machine and Node version.

/** A seed part: numbers (any finite value; integers up to 2^53 are hashed exactly), strings or bigints. */
export type SeedPart = number | string | bigint;

const enc = new TextEncoder();

function mix32(x: number): number {
  // murmur3 / splitmix32 finaliser: a bijection on uint32 with good avalanche.
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * A stable 32-bit hash of any number of parts, e.g. `hashSeed(runSeed, sampleId, groupIndex)`.
 * Parts are typed and length-delimited, so `hashSeed('a', 'bc')`, `hashSeed('ab', 'c')` and `hashSeed(1)` vs
 * `hashSeed('1')` all differ.
 */
export function hashSeed(...parts: SeedPart[]): number {
  let h = 0x811c9dc5 ^ parts.length;
  const feed = (v: number): void => {
    h = mix32((h ^ (v >>> 0)) + 0x9e3779b9);
  };
  for (const p of parts) {
    if (typeof p === 'number') {
      if (Number.isInteger(p) && Math.abs(p) <= Number.MAX_SAFE_INTEGER) {
        feed(1);
        feed(p >>> 0);
        feed(Math.floor(p / 4294967296) >>> 0);
      } else {
        feed(2);
        const b = new DataView(new ArrayBuffer(8));
        b.setFloat64(0, p);
        feed(b.getUint32(0));
        feed(b.getUint32(4));
      }
    } else if (typeof p === 'bigint') {
      feed(3);
      let v = BigInt.asUintN(128, p);
      for (let i = 0; i < 4; i++) {
        feed(Number(v & 0xffffffffn));
        v >>= 32n;
      }
    } else {
      feed(4);
      const bytes = enc.encode(p);
      feed(bytes.length);
      let i = 0;
      for (; i + 4 <= bytes.length; i += 4) {
        feed(bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
      }
      let tail = 0;
      for (let s = 0; i < bytes.length; i++, s += 8) tail |= bytes[i] << s;
      feed(tail);
    }
  }
  return mix32(h);
}

/** A stable number in [0, 1) from the parts (e.g. the train/eval split of a sample id). */
export function hashUnit(...parts: SeedPart[]): number {
  return hashSeed(...parts) / 4294967296;
}

/** A seeded pseudo-random generator. Not cryptographic; period 2^32 per stream, which is plenty per sample. */
export interface Rng {
  /** Next uint32. */
  u32(): number;
  /** Uniform in [0, 1). */
  float(): number;
  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number;
  /** Uniform integer in [lo, hi] (both inclusive, like Python's random.randint). */
  int(lo: number, hi: number): number;
  /** Standard normal (Marsaglia polar method). */
  normal(): number;
  /** A uniformly chosen element. */
  pick<T>(items: readonly T[]): T;
  /** Shuffles an array or typed array in place (Fisher-Yates) and returns it. */
  shuffle<A extends { length: number; [index: number]: unknown }>(items: A): A;
  /** An independent generator derived from this one's seed and the given parts (does not advance this one). */
  fork(...parts: SeedPart[]): Rng;
}

/** The uint32 a seed stands for: itself if it already is one, else its hash. */
function baseOf(seed: SeedPart): number {
  return typeof seed === 'number' && Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff ? seed >>> 0 : hashSeed(seed);
}

/** mulberry32's output (a uint32) for its state after the step `(state + 0x6d2b79f5) | 0`: rng's u32, and the inlined generators below. */
function mulberry32(state: number): number {
  let t = Math.imul(state ^ (state >>> 15), state | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}

/** rng(seed)'s mulberry32 state before its first draw. */
function initialState(base: number): number {
  return mix32(base ^ 0x6d2b79f5);
}

/** `rng(seed)`: a generator whose whole sequence is fixed by `seed` (any SeedPart; hashed if not a uint32). */
export function rng(seed: SeedPart): Rng {
  const base = baseOf(seed);
  let state = initialState(base);
  let spare: number | null = null;
  const u32 = (): number => mulberry32((state = (state + 0x6d2b79f5) | 0));
  const float = (): number => u32() / 4294967296;
  const r: Rng = {
    u32,
    float,
    uniform: (lo, hi) => lo + (hi - lo) * float(),
    int: (lo, hi) => {
      lo = Math.ceil(lo);
      hi = Math.floor(hi);
      if (hi < lo) return lo;
      return lo + Math.floor(float() * (hi - lo + 1));
    },
    normal: () => {
      if (spare !== null) {
        const s = spare;
        spare = null;
        return s;
      }
      for (;;) {
        const u = 2 * float() - 1;
        const v = 2 * float() - 1;
        const s = u * u + v * v;
        if (s > 0 && s < 1) {
          const m = Math.sqrt((-2 * Math.log(s)) / s);
          spare = v * m;
          return u * m;
        }
      }
    },
    pick: (items) => {
      if (items.length === 0) throw new Error('rng.pick: empty list');
      return items[Math.floor(float() * items.length)];
    },
    shuffle: (items) => {
      for (let i = items.length - 1; i > 0; i--) {
        const j = Math.floor(float() * (i + 1));
        const t = items[i];
        items[i] = items[j];
        items[j] = t;
      }
      return items;
    },
    fork: (...parts) => rng(hashSeed(base, ...parts)),
  };
  return r;
}

/**
 * Fills `out` with independent standard-normal float32 values (Marsaglia polar method) drawn from `seed`.
 * Deterministic: the same seed and length give the same values. Returns `out`.
 */
export function fillStandardNormal(out: Float32Array, seed: SeedPart | Rng): Float32Array {
  if (typeof seed !== 'object') return fillStandardNormalSeeded(out, initialState(baseOf(seed)));
  const g = seed;
  const n = out.length;
  let i = 0;
  while (i < n) i = polar(out, i, g.u32(), g.u32());
  return out;
}

/**
 * One Marsaglia polar draw from two uint32s: up to two standard-normal values written at out[i...]; returns the next
 * index (i itself when the pair is rejected).
 */
function polar(out: Float32Array, i: number, a: number, b: number): number {
  const u = 2 * (a / 4294967296) - 1;
  const v = 2 * (b / 4294967296) - 1;
  const s = u * u + v * v;
  if (s >= 1 || s === 0) return i;
  const m = Math.sqrt((-2 * Math.log(s)) / s);
  out[i++] = u * m;
  if (i < out.length) out[i++] = v * m;
  return i;
}

/**
 * fillStandardNormal(out, rng(seed)) from rng's initial state: the same values, the generator's state kept here
 * (mulberry32, rng's u32 step for step) instead of two closure calls per pair; the rollout worker's noise, 3*H*W
 * values per action.
 */
function fillStandardNormalSeeded(out: Float32Array, state: number): Float32Array {
  const n = out.length;
  let i = 0;
  while (i < n) {
    const a = mulberry32((state = (state + 0x6d2b79f5) | 0));
    const b = mulberry32((state = (state + 0x6d2b79f5) | 0));
    i = polar(out, i, a, b);
  }
  return out;
}

/** A new Float32Array of `length` standard-normal values from `seed`. */
export function standardNormal(length: number, seed: SeedPart | Rng): Float32Array {
  return fillStandardNormal(new Float32Array(length), seed);
}

// Inverse standard-normal CDF at the 65536 bin centres (Acklam's rational approximation, |error| < 1.2e-9).
let NORMAL_TABLE: Float32Array | null = null;

function inverseNormalCdf(p: number): number {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628274631];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - lo) return -inverseNormalCdf(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

function normalTable(): Float32Array {
  if (!NORMAL_TABLE) {
    NORMAL_TABLE = new Float32Array(65536);
    for (let k = 0; k < 65536; k++) NORMAL_TABLE[k] = inverseNormalCdf((k + 0.5) / 65536);
  }
  return NORMAL_TABLE;
}

/**
 * Fast approximate standard normals for image noise: each value is the normal quantile of one of 65536
 * equiprobable bins (two values per 32-bit draw, |z| <= 4.3). About 10x faster than fillStandardNormal; the
 * distribution is exact up to that 16-bit quantisation. Use fillStandardNormal where densities matter.
 */
export function fillStandardNormalFast(out: Float32Array, seed: SeedPart | Rng): Float32Array {
  const t = normalTable();
  const g = typeof seed === 'object' ? seed : rng(seed);
  const n = out.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const u = g.u32();
    out[i] = t[u & 0xffff];
    out[i + 1] = t[u >>> 16];
  }
  if (i < n) out[i] = t[g.u32() & 0xffff];
  return out;
}

/**
 * out[k] = src[k] + scale * z[k] for z = fillStandardNormalFast(new Float32Array(src.length), rng(seed)), stored
 * through `out` (a clamping view rounds half to even and clamps, as a store of the same doubles would): the same
 * values without the noise array, the generator's state kept here (mulberry32, rng's u32 step for step) and the
 * table read directly (a Float32Array element reads as the same double). Gaussian noise on bytes (gaussian_noise).
 */
export function addStandardNormalFast(src: Uint8Array, scale: number, seed: SeedPart, out: Uint8ClampedArray): Uint8ClampedArray {
  if (out.length !== src.length) throw new Error(`addStandardNormalFast: out has ${out.length} elements, src ${src.length}`);
  const t = normalTable();
  let state = initialState(baseOf(seed));
  const n = src.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const u = mulberry32((state = (state + 0x6d2b79f5) | 0));
    out[i] = src[i] + scale * t[u & 0xffff];
    out[i + 1] = src[i + 1] + scale * t[u >>> 16];
  }
  if (i < n) out[i] = src[i] + scale * t[mulberry32((state = (state + 0x6d2b79f5) | 0)) & 0xffff];
  return out;
}
