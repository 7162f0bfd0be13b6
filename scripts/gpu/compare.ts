// How far a device's values are from the CPU's, one definition for npm run gpu-check and scripts/gpu/bisect.ts.

export type Outputs = Record<string, Float32Array>;

export interface OutputDiff {
  output: string;
  /** Largest |device - cpu| over the output's values. */
  maxAbs: number;
  /** Largest |cpu|: the scale maxAbs is measured against. */
  scale: number;
  relative: number;
  /** The relative difference this output is allowed: the tolerance, or more where the CPU's own float noise is larger. */
  allowed: number;
  ok: boolean;
}

/**
 * The next float32 away from zero of every non-zero value (zeros stay zero): a one-ulp nudge. How much an output moves
 * when its inputs move by one ulp is the float noise any two devices that round differently show in it (a ReLU gate
 * whose pre-activation is within rounding of zero flips; a sum of terms that cancel keeps its absolute error).
 */
export function nudged(x: Float32Array): Float32Array {
  const out = Float32Array.from(x);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < out.length; i++) if (out[i] !== 0 && Number.isFinite(out[i]!)) bits[i]!++;
  return out;
}

/** How many times the CPU's own one-ulp sensitivity a device may differ by (gpu-check's noise allowance). */
export const NOISE_FACTOR = 10;

/** Whether two arrays hold the same bits (a device's two runs; bisect's graph with and without more outputs). */
export function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** The smallest scale a difference is measured against in gpu-check. */
export const SCALE_FLOOR = 1e-6;

/**
 * Largest |b - a| and largest |a| over the values finite in `a`; `finite` is false when a value is finite in one and
 * not in the other.
 */
export function difference(a: Float32Array, b: Float32Array): { maxAbs: number; scale: number; finite: boolean } {
  let maxAbs = 0;
  let scale = 0;
  let finite = true;
  for (let i = 0; i < a.length; i++) {
    if (Number.isFinite(a[i]!) !== Number.isFinite(b[i]!)) finite = false;
    if (!Number.isFinite(a[i]!)) continue;
    maxAbs = Math.max(maxAbs, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(a[i]!));
  }
  return { maxAbs, scale, finite };
}

/**
 * Largest difference of each output of `b` against `a`, relative to a's largest magnitude (at least SCALE_FLOOR). An
 * output passes within `tolerance`, or within NOISE_FACTOR times its relative difference in `noise` (the CPU's own
 * outputs after a one-ulp nudge of the inputs, gpu-check) where that is larger.
 */
export function compareOutputs(a: Outputs, b: Outputs, tolerance: number, noise?: Outputs): OutputDiff[] {
  return Object.keys(a).sort().map((output) => {
    const x = a[output]!;
    const y = b[output];
    if (!y || y.length !== x.length) return { output, maxAbs: Infinity, scale: 0, relative: Infinity, allowed: tolerance, ok: false };
    const rel = (z: Float32Array) => {
      const { maxAbs, scale, finite } = difference(x, z);
      // values below SCALE_FLOOR count as zero: a KL of 0 on the CPU and 7e-11 on a GPU agree
      return { maxAbs: finite ? maxAbs : Infinity, scale, relative: finite ? maxAbs / Math.max(scale, SCALE_FLOOR) : Infinity };
    };
    const d = rel(y);
    const n = noise?.[output];
    const own = n && n.length === x.length ? rel(n).relative : 0;
    const allowed = Math.max(tolerance, Number.isFinite(own) ? NOISE_FACTOR * own : 0);
    return { output, ...d, allowed, ok: d.relative <= allowed };
  });
}