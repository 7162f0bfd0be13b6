// SSIM as graph ops, exactly as scikit-image computes it with gaussian_weights=True, sigma=1.5,
// use_sample_covariance=False, data_range=1: an 11x11 Gaussian window (truncated at 3.5 sigma), valid
// windows only, per-channel population statistics, and the mean over channels and windows.

import type { Value } from '../graph/graph.ts';
import { add, concat, conv, div, mul, reduceMean, reshape, shapeOf, slice, sub } from '../graph/ops.ts';

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

/**
 * Planes per folded Conv group: onnxruntime's NCHWc depthwise kernel works on blocks of 8 (AVX2) or 16
 * (AVX-512) channels and pads any other count up to a block. The folded filter stacks the planes of all
 * statistics of all images (4 statistics x N images x 3 channels) and pads the count with zero planes to a
 * multiple of 16, so every Conv group is whole blocks: 12 planes (one pair) cost 16, 48 (four pairs) 48.
 * Before round 19 the fold stacked whole images into 48 channels, so one pair cost 48 planes.
 */
export const SSIM_FOLD_PLANES = 16;

/**
 * Images per graph run on one lane (RewardScorer's sharedReferenceRunner, whose runs encode the distinct
 * references of a slice once): 4 pairs stack exactly 4 statistics x 4 images x 3 channels = 48 planes, whole
 * channel blocks with no padding. 8 or more per run fall out of cache (docs/performance.md).
 */
export const SSIM_RUN_BATCH = 4;

/**
 * Images per graph run on several lanes (RewardScorer at >= LANE_MIN_PIXELS, the `bench models` SSIM figure):
 * one pair, whose SSIM intermediates (~0.7 MB a tensor at 256x256) stay in a core's L2 cache while two lanes
 * share the last-level cache. 64 pairs of 256x256 took less CPU in runs of 1 than in runs of 4 (docs/performance.md,
 * "Round 19: ssim19"); the encoder of the reward graph too. Every item is scored on its own, so the values are
 * the same at any slice size.
 */
export const SSIM_LANE_RUN_BATCH = 1;

/**
 * The same filtering of several [N,C,H,W] tensors as one Conv over [*, 16, H, W]: the tensors' planes are
 * stacked (zero planes pad the count to a multiple of SSIM_FOLD_PLANES, computed at run time from N), so
 * the kernel runs on whole channel blocks. Each plane is filtered on its own with the same taps in the same
 * order, so every value equals gaussianFilter's. Forward only: the run-time padding and split are not
 * differentiable graph ops.
 */
function foldedGaussianFilter(xs: Value[]): Value[] {
  const g = xs[0].graph;
  const [, cDim, h, w] = xs[0].shape;
  const c = cDim as number;
  const B = SSIM_FOLD_PLANES;
  const int = (op: string, a: Value, b: number) => g.emit(op, [a, g.ints([b])], {}, [{ dtype: 'int64', shape: [1] }])[0];
  // planes of each tensor = N * c; padding = (B - (len(xs) * N * c) mod B) mod B zero planes
  const planes = int('Mul', slice(shapeOf(xs[0]), [0], [1], [0]), c);
  const rest = int('Mod', int('Mul', planes, xs.length), B);
  const padding = int('Mod', g.emit('Sub', [g.ints([B]), rest], {}, [{ dtype: 'int64', shape: [1] }])[0], B);
  const zeroShape = g.emit('Concat', [padding, g.ints([h as number, w as number])], { axis: 0 }, [{ dtype: 'int64', shape: [3] }])[0];
  const zeros = g.emit('Expand', [g.scalar(0), zeroShape], {}, [{ dtype: 'float32', shape: ['P', h, w] }])[0];
  const flat = xs.map((x) => reshape(x, ['T', h, w]));
  const stacked = g.emit('Concat', [...flat, zeros], { axis: 0 }, [{ dtype: 'float32', shape: ['S', h, w] }])[0];
  const filtered = gaussianFilter(reshape(stacked, ['G', B, h, w]));
  const [, , fh, fw] = filtered.shape;
  const sizes = g.emit('Concat', [...xs.map(() => planes), padding], { axis: 0 }, [{ dtype: 'int64', shape: [xs.length + 1] }])[0];
  const parts = g.emit('Split', [reshape(filtered, ['S', fh, fw]), sizes], { axis: 0 }, [...xs, zeros].map(() => ({ dtype: 'float32' as const, shape: ['T', fh, fw] })));
  return parts.slice(0, xs.length).map((p, i) => reshape(p, [xs[i].shape[0], c, fh, fw]));
}

export interface SsimOptions {
  /**
   * true (default): the fast folded filter (forward only). false: one Conv over the stacked channels,
   * built from differentiable ops (graphs that take gradients through SSIM). Both give the same values.
   */
  fold?: boolean;
}

/** The SSIM map [N,3,H-10,W-10] of `x` against `y` (both [N,3,H,W] in [0,1]). */
export function ssimMap(x: Value, y: Value, opts: SsimOptions = {}): Value {
  const [, c, h, w] = x.shape;
  if (typeof h !== 'number' || typeof w !== 'number' || h < SSIM_WINDOW || w < SSIM_WINDOW) {
    throw new Error(`ssim: images must be at least ${SSIM_WINDOW}x${SSIM_WINDOW}, got ${h}x${w}`);
  }
  const C = c as number;
  // SSIM needs only the sum of the two variances, so four statistics suffice: E[x], E[y], E[x^2 + y^2]
  // and E[xy], filtered in one pass.
  const stats = [x, y, add(mul(x, x), mul(y, y)), mul(x, y)];
  let mx: Value, my: Value, exxyy: Value, exy: Value;
  if (opts.fold ?? true) {
    [mx, my, exxyy, exy] = foldedGaussianFilter(stats);
  } else {
    const f = gaussianFilter(concat(stats, 1));
    const part = (i: number) => slice(f, [i * C], [(i + 1) * C], [1]);
    [mx, my, exxyy, exy] = [0, 1, 2, 3].map(part);
  }
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
export function ssim(x: Value, y: Value, opts: SsimOptions = {}): Value {
  return reduceMean(ssimMap(x, y, opts), [1, 2, 3]);
}
