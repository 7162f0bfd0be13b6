// SSIM as graph ops, exactly as scikit-image computes it with gaussian_weights=True, sigma=1.5,
// use_sample_covariance=False, data_range=1: an 11x11 Gaussian window (truncated at 3.5 sigma), valid
// windows only, per-channel population statistics, and the mean over channels and windows.

import type { Value } from '../graph/graph.ts';
import { add, concat, conv, div, mul, reduceMean, slice, sub } from '../graph/ops.ts';

export const SSIM_WINDOW = 11;

/** Side of the valid-window SSIM map of a size x size image: size - SSIM_WINDOW + 1 (SSIM_WINDOW = 11). */
export function ssimMapSize(size: number): number {
  return size - SSIM_WINDOW + 1;
}
const SIGMA = 1.5;
const C1 = 0.01 ** 2;
const C2 = 0.03 ** 2;

/** scipy.ndimage's Gaussian kernel: radius int(3.5 * sigma + 0.5) = 5, normalised to sum 1. */
export function gaussianWindow1d(sigma = SIGMA, radius = Math.floor(3.5 * sigma + 0.5)): Float32Array {
  const w = Array.from({ length: 2 * radius + 1 }, (_, i) => Math.exp((-0.5 * (i - radius) ** 2) / sigma ** 2));
  const s = w.reduce((a, b) => a + b, 0);
  return Float32Array.from(w, (x) => x / s);
}

/** Depthwise separable Gaussian filtering of every channel, valid windows only. */
function gaussianFilter(x: Value): Value {
  const g = x.graph;
  const c = x.shape[1] as number;
  const k = gaussianWindow1d();
  const rows = new Float32Array(c * SSIM_WINDOW);
  for (let i = 0; i < c; i++) rows.set(k, i * SSIM_WINDOW);
  const vertical = g.constant(rows, [c, 1, SSIM_WINDOW, 1]);
  const horizontal = g.constant(rows, [c, 1, 1, SSIM_WINDOW]);
  return conv(conv(x, vertical, undefined, { group: c }), horizontal, undefined, { group: c });
}

/** The SSIM map [N,3,H-10,W-10] of `x` against `y` (both [N,3,H,W] in [0,1]). */
export function ssimMap(x: Value, y: Value): Value {
  const [, c, h, w] = x.shape;
  if (typeof h !== 'number' || typeof w !== 'number' || h < SSIM_WINDOW || w < SSIM_WINDOW) {
    throw new Error(`ssim: images must be at least ${SSIM_WINDOW}x${SSIM_WINDOW}, got ${h}x${w}`);
  }
  const C = c as number;
  // SSIM needs only the sum of the two variances, so four statistics suffice: E[x], E[y], E[x^2 + y^2]
  // and E[xy], filtered in one pass with the four stacked along channels.
  const f = gaussianFilter(concat([x, y, add(mul(x, x), mul(y, y)), mul(x, y)], 1));
  const part = (i: number) => slice(f, [i * C], [(i + 1) * C], [1]);
  const [mx, my, exxyy, exy] = [0, 1, 2, 3].map(part);
  const mxy = mul(mx, my);
  const mxx = mul(mx, mx);
  const myy = mul(my, my);
  const variances = sub(exxyy, add(mxx, myy));
  const cov = sub(exy, mxy);
  const num = mul(add(mul(mxy, 2), C1), add(mul(cov, 2), C2));
  const den = mul(add(add(mxx, myy), C1), add(variances, C2));
  return div(num, den);
}

/** Mean SSIM per image, [N]. */
export function ssim(x: Value, y: Value): Value {
  return reduceMean(ssimMap(x, y), [1, 2, 3]);
}
