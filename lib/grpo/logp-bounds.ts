// The range an honest behaviour log-density (a rollout's logp, logp_map, or a flow step's) can take, so that a
// worker's made-up value is refused when its result is decoded (orchestrator/results.ts, lib/flow/wire.ts) instead of
// reaching the batch: 1e300 is a finite double but Infinity as float32, and the batch could not be encoded (review25c).
//
// Every log-density here is a Gaussian's, per element or averaged over the elements of one action:
//   logp_e = -z_e^2 / 2 - log(sigma) - log(2 pi) / 2,   z_e = (x_e - mean_e) / sigma,
// with z_e the worker's noise draw (standardNormal, lib/data/random.ts). So
//   max: z = 0:            -log(sigma_min) - log(2 pi) / 2
//   min: |z| = Z:          -Z^2 / 2 - log(sigma_max) - log(2 pi) / 2
// Z bounds the noise: the Marsaglia polar draw's largest |value| is sqrt(-2 ln s_min) with s_min = 2^-62 (its u and v
// are multiples of 2^-31), i.e. sqrt(124 ln 2) = 9.27, plus the float32 rounding of x = mean + sigma z seen through
// (x - mean) / sigma: at most 2^-22 |x| / sigma. Both bounds are far from honest values (mean z^2 is 1: an honest
// logp lies about 0.5 below the maximum, and some 40 below the minimum), and the range is narrow enough that no
// value inside it overflows float32 or dominates the learner's ratio by its size alone.
import type { RunConfig } from '../config/index.ts';

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/** The largest |z| of the standard-normal generator (Marsaglia polar on 32-bit uniforms). */
export const NOISE_Z_MAX = Math.sqrt(124 * Math.LN2);

/**
 * The log-std range a learned model.logStd can reach and still give finite float32 densities: exp(-2 log_std)
 * overflows below -ln(FLT_MAX)/2, and the action mean + sigma z overflows above ln(FLT_MAX).
 */
const FLOAT32_LOG_MAX = Math.log(3.4028234663852886e38);
export const LEARNED_LOG_STD_RANGE = { lo: -FLOAT32_LOG_MAX / 2, hi: FLOAT32_LOG_MAX } as const;

export interface LogStdRange {
  lo: number;
  hi: number;
}

export interface LogpRange {
  min: number;
  max: number;
}

/** The Gaussian policy's log-std: model.logStd (as float32) when fixed; any finite-density value when learned. */
export function policyLogStdRange(model: Pick<RunConfig['model'], 'logStd' | 'learnLogStd'>): LogStdRange {
  if (model.learnLogStd) return { ...LEARNED_LOG_STD_RANGE };
  const s = Math.fround(model.logStd);
  return { lo: s, hi: s };
}

/**
 * The range of an honest log-density whose sigma has a log in `logStd` and whose sample x has |x| <= `maxAbsX` (the
 * decoded action or step state: it sizes the float32 rounding). The bounds are widened by a float32 rounding margin.
 */
export function logpRange(logStd: LogStdRange, maxAbsX: number): LogpRange {
  const z = NOISE_Z_MAX + (2 ** -22 * maxAbsX) / Math.exp(logStd.lo);
  const max = -logStd.lo - HALF_LOG_2PI;
  const min = -0.5 * z * z - logStd.hi - HALF_LOG_2PI;
  return { min: min - 1e-4 * (1 + Math.abs(min)), max: max + 1e-4 * (1 + Math.abs(max)) };
}

/** The largest |value| of `x` (0 for none). */
export function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    const a = Math.abs(x[i]!);
    if (a > m) m = a;
  }
  return m;
}

/**
 * Throws, naming `field`, unless `v` is a log-density in `range` (and so finite as float32, as the batch carries it).
 * The message says why a value outside is no honest result: `what` names the sigma (e.g. "model.logStd -4.6").
 */
export function checkLogp(v: number, field: string, range: LogpRange, what: string): void {
  if (!Number.isFinite(Math.fround(v))) throw new Error(`${field} is ${v}, not a finite float32`);
  if (!(v >= range.min && v <= range.max)) {
    throw new Error(`${field} is ${v}, outside [${range.min.toPrecision(6)}, ${range.max.toPrecision(6)}]: no log-density of a Gaussian with ${what} and the worker's noise lies there`);
  }
}

/** The largest finite float32. */
const FLT_MAX = 3.4028234663852886e38;

/**
 * Whether every value of `x` lies in [lo, hi] and is finite (none NaN or infinite): checkLogpMap's test, without a call
 * per value, four values a test (the comparisons as 0/1 and'ed, no branch per value: ~1.7x faster; round 28). The
 * bounds are clamped to [-FLT_MAX, FLT_MAX], which every finite float32 lies in (exact for float32 data): an infinite
 * bound (logpRange's once z*z overflows: a log-std below about -370, or |action| near FLT_MAX) must not accept an
 * infinite value, which a finiteness check refuses (orchestrator/results.ts; round 28's review). A NaN bound stays NaN
 * and accepts nothing. Also the orchestrator's SSIM-map range check.
 */
export function within(x: Float32Array, lo: number, hi: number): boolean {
  lo = Math.max(lo, -FLT_MAX);
  hi = Math.min(hi, FLT_MAX);
  const n = x.length;
  const n4 = n & ~3;
  let i = 0;
  for (; i < n4; i += 4) {
    const a = x[i]!;
    const b = x[i + 1]!;
    const c = x[i + 2]!;
    const d = x[i + 3]!;
    if ((+(a >= lo) & +(a <= hi) & +(b >= lo) & +(b <= hi) & +(c >= lo) & +(c <= hi) & +(d >= lo) & +(d <= hi)) === 0) return false;
  }
  for (; i < n; i++) {
    const v = x[i]!;
    if (!(v >= lo && v <= hi)) return false;
  }
  return true;
}

/**
 * checkLogp for each element of a per-element log-density map (the first element outside is named). A map `within`
 * the range is accepted in one pass; only one that is not is walked value by value, for the error.
 */
export function checkLogpMap(map: Float32Array, field: string, range: LogpRange, what: string): void {
  if (within(map, range.min, range.max)) return;
  for (let i = 0; i < map.length; i++) {
    const v = map[i]!;
    if (!(v >= range.min && v <= range.max)) checkLogp(v, `${field}[flat ${i}]`, range, what);
  }
}
