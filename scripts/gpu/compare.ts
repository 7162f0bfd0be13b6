// How far a device's values are from the CPU's, one definition for npm run gpu-check and scripts/gpu/bisect.ts.

export type Outputs = Record<string, Float32Array>;

export interface OutputDiff {
  output: string;
  /** Largest |device - cpu| over the output's values. */
  maxAbs: number;
  /** Largest |cpu|: the scale maxAbs is measured against. */
  scale: number;
  relative: number;
  ok: boolean;
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

/** Largest difference of each output of `b` against `a`, relative to a's largest magnitude (at least SCALE_FLOOR). */
export function compareOutputs(a: Outputs, b: Outputs, tolerance: number): OutputDiff[] {
  return Object.keys(a).sort().map((output) => {
    const x = a[output]!;
    const y = b[output];
    if (!y || y.length !== x.length) return { output, maxAbs: Infinity, scale: 0, relative: Infinity, ok: false };
    const { maxAbs, scale, finite } = difference(x, y);
    // values below SCALE_FLOOR count as zero: a KL of 0 on the CPU and 7e-11 on a GPU agree
    const relative = finite ? maxAbs / Math.max(scale, SCALE_FLOOR) : Infinity;
    return { output, maxAbs: finite ? maxAbs : Infinity, scale, relative, ok: relative <= tolerance };
  });
}
