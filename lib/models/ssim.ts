// SSIM as graph ops, exactly as scikit-image computes it with gaussian_weights=True, sigma=1.5,
// use_sample_covariance=False, data_range=1: an 11x11 Gaussian window (truncated at 3.5 sigma), valid
// windows only, per-channel population statistics, and the mean over channels and windows.

import type { Graph, Value } from '../graph/graph.ts';
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

/**
 * The Gaussian taps of `c` channels as a [c,1,11,1] (vertical) or [c,1,1,11] (horizontal) constant, one per graph:
 * so ssim() and ssimMap() of the same images in one graph (the reward graph outputs both) emit identical nodes,
 * which the graph merges, and the filter and the SSIM formula run once, not twice.
 */
const windows = new WeakMap<Graph, Map<string, Value>>();
function gaussianTaps(g: Graph, c: number, vertical: boolean): Value {
  let mine = windows.get(g);
  if (!mine) windows.set(g, (mine = new Map()));
  const key = `${c}:${vertical ? 'v' : 'h'}`;
  let v = mine.get(key);
  if (!v) {
    const k = gaussianWindow1d();
    const rows = new Float32Array(c * SSIM_WINDOW);
    for (let i = 0; i < c; i++) rows.set(k, i * SSIM_WINDOW);
    v = g.constant(rows, vertical ? [c, 1, SSIM_WINDOW, 1] : [c, 1, 1, SSIM_WINDOW]);
    mine.set(key, v);
  }
  return v;
}

/** Depthwise separable Gaussian filtering of every channel, valid windows only. */
function gaussianFilter(x: Value): Value {
  const c = x.shape[1] as number;
  return conv(conv(x, gaussianTaps(x.graph, c, true), undefined, { group: c }), gaussianTaps(x.graph, c, false), undefined, { group: c });
}

/**
 * Channels per folded Conv: onnxruntime's NCHWc depthwise kernel works on blocks of 8 (AVX2) or 16
 * (AVX-512) channels and pads any other count up to a block, so 12 stacked channels cost 16. 48 is a
 * multiple of both blocks and of 3 and 12.
 */
export const SSIM_FOLD_CHANNELS = 48;

/**
 * Images per graph run on one lane (RewardScorer's sharedReferenceRunner, whose runs encode the distinct
 * references of a slice once): 4 pairs stack exactly 4 statistics x 4 images x 3 channels = 48 planes, one
 * folded Conv with no padding. Measured on the 2-core machine at 256x256, 64 pairs: 1 or 2 per run pay for
 * padding to 48 planes, 8 or more fall out of cache (docs/performance-history/ssim.md).
 */
export const SSIM_RUN_BATCH = 4;

/**
 * Images per graph run on several lanes (RewardScorer at >= LANE_MIN_PIXELS, the `bench models` SSIM figure),
 * with the plain filter (`fold: false`): one pair is 12 stacked channels, the 12 planes of its statistics, with
 * no zero planes, and its intermediates (~0.7 MB a tensor at 256x256) stay in a core's own cache while two
 * lanes share the last-level one. 64 pairs of 256x256 on two lanes took ~25% less CPU and wall time than runs
 * of 4 with the folded filter (docs/performance-history/ssim.md, "Round 19: ssim19"). Every item is scored on its own and
 * both filters give the same values, so the values are unchanged.
 */
export const SSIM_LANE_RUN_BATCH = 1;

/**
 * The same filtering of several [N,C,H,W] tensors as one Conv over [*, 48, H, W]: the tensors are
 * stacked along the batch (zero images pad the count of planes to a multiple of 48, computed at run time
 * from N), so the channel count needs no padding and the kernel runs on whole blocks. Each plane is
 * filtered on its own with the same taps in the same order, so every value equals gaussianFilter's.
 * Forward only: the run-time padding and split are not differentiable graph ops.
 */
function foldedGaussianFilter(xs: Value[]): Value[] {
  const g = xs[0].graph;
  const [, cDim, h, w] = xs[0].shape;
  const c = cDim as number;
  const F = SSIM_FOLD_CHANNELS;
  if (F % c !== 0) throw new Error(`ssim: ${c} channels do not divide the fold of ${F}`);
  const perGroup = F / c; // images of c channels per folded Conv input
  const int = (op: string, a: Value, b: number) => g.emit(op, [a, g.ints([b])], {}, [{ dtype: 'int64', shape: [1] }])[0];
  // padding = (perGroup - (len(xs) * N) mod perGroup) mod perGroup zero images
  const n = slice(shapeOf(xs[0]), [0], [1], [0]);
  const rest = int('Mod', int('Mul', n, xs.length), perGroup);
  const padding = int('Mod', g.emit('Sub', [g.ints([perGroup]), rest], {}, [{ dtype: 'int64', shape: [1] }])[0], perGroup);
  const zeroShape = g.emit('Concat', [padding, g.ints([c, h as number, w as number])], { axis: 0 }, [{ dtype: 'int64', shape: [4] }])[0];
  const zeros = g.emit('Expand', [g.scalar(0), zeroShape], {}, [{ dtype: 'float32', shape: ['P', c, h, w] }])[0];
  const stacked = g.emit('Concat', [...xs, zeros], { axis: 0 }, [{ dtype: 'float32', shape: ['S', c, h, w] }])[0];
  const filtered = gaussianFilter(reshape(stacked, ['G', F, h, w]));
  const [, , fh, fw] = filtered.shape;
  const planes = reshape(filtered, ['S', c, fh, fw]);
  const sizes = g.emit('Concat', [...xs.map(() => n), padding], { axis: 0 }, [{ dtype: 'int64', shape: [xs.length + 1] }])[0];
  const parts = g.emit('Split', [planes, sizes], { axis: 0 }, [...xs, zeros].map((x) => ({ dtype: 'float32' as const, shape: [x.shape[0], c, fh, fw] })));
  return parts.slice(0, xs.length);
}

export interface SsimOptions {
  /**
   * true (default): the folded filter (forward only), fastest at SSIM_RUN_BATCH pairs a run. false: one Conv
   * over the 12 stacked channels of each pair, built from differentiable ops (graphs that take gradients through
   * SSIM), and the faster one at one pair a run (SSIM_LANE_RUN_BATCH). Both give the same values.
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
