// The project's ONNX graphs, all from one network definition (policy.ts), so the learner recomputes
// exactly the log-probabilities the rollout workers produced. Contracts: docs/graphs.md.

import { Graph, type Value } from '../graph/graph.ts';
import { abs, add, cast, clip, convTranspose, div, exp, greater, less, log, max, min, mul, neg, or, reduceMean, relu, square, sub, unsqueeze } from '../graph/ops.ts';
import { IDENTITY_HUBER, MAX_LOG_RATIO } from '../grpo/algorithm.ts';
import { gradients } from '../graph/autodiff.ts';
import { shareRepeatedRows } from '../graph/shared-rows.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';
import { bakeParams, checkResolution, declareParams, LOG_STD, policyMean, trainableParams, type PolicySpec } from './policy.ts';
import { gaussianWindow1d, ssim, ssimMap, SSIM_WINDOW } from './ssim.ts';
import { BUILTIN_ENCODER_NAME, builtinEncoder, clipPreprocess, embeddingCosine, embeddingCosineSharedReference, splicedEncoder, type ImageEncoder } from './encoder.ts';

export interface Resolution {
  height: number;
  width: number;
}

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/** An image batch input [N,3,H,W] at resolution r. */
export function imageInput(g: Graph, name: string, r: Resolution): Value {
  return g.input(name, ['N', 3, r.height, r.width]);
}

/**
 * Gaussian log-density of `action` under N(mean, sigma^2), averaged over the non-batch dimensions
 * (as Flow-GRPO does), with sigma = exp(log_std). Returns [N].
 */
export function gaussianLogp(action: Value, mean: Value, logStd: Value): Value {
  return reduceMean(gaussianLogDensity(action, mean, logStd), [1, 2, 3]);
}

/** The per-element Gaussian log-density [N,3,H,W] (dense advantages weight each element by its own). */
export function gaussianLogDensity(action: Value, mean: Value, logStd: Value): Value {
  const z2 = mul(square(sub(action, mean)), mul(exp(mul(logStd, -2)), 0.5));
  return sub(neg(z2), add(logStd, HALF_LOG_2PI));
}

/** `sharedRows`: the network runs once per distinct image row (graph/shared-rows.ts; two more inputs). */
export interface SharedRowsOption {
  sharedRows?: boolean;
}

/**
 * policy: image, noise, param.* -> mean, action = mean + sigma * noise, logp.
 * With `baked` parameters the weights are constants instead of inputs (a standalone model).
 */
export function buildPolicyGraph(spec: PolicySpec, r: Resolution, baked?: TensorMap, o: SharedRowsOption = {}): Graph {
  checkResolution(spec, r.height, r.width);
  const g = new Graph();
  const image = imageInput(g, 'image', r);
  const noise = imageInput(g, 'noise', r);
  const params = baked ? bakeParams(g, spec, baked) : declareParams(g, spec);
  const mean = policyMean(spec, params, image);
  const logStd = params.get(LOG_STD)!;
  const action = add(mean, mul(exp(logStd), noise));
  g.output('mean', mean);
  g.output('action', action);
  const density = gaussianLogDensity(action, mean, logStd);
  g.output('logp', reduceMean(density, [1, 2, 3]));
  g.output('logp_map', density);
  if (o.sharedRows) shareRepeatedRows(g, image);
  return g;
}

function outputGradients(g: Graph, spec: PolicySpec, params: Map<string, Value>, loss: Value): void {
  const names = trainableParams(spec).map((p) => p.name);
  const grads = gradients(
    loss,
    names.map((n) => params.get(n)!),
  );
  names.forEach((n, i) => g.output(`grad.${n}`, grads[i]));
}

/**
 * GRPO training: param.*, image, action, logp_old [N], advantage [N], ref_mean, clip_low, clip_high,
 * dual_clip, beta -> loss, grad.*, logp, ratio, clip_fraction, kl. The loss, as Flow-GRPO writes it, with
 * dual-clip PPO's bound on negative advantages (Ye et al. 2020; docs/grpo.md, "Dual clip"):
 *   r = exp(min(logp - logp_old, MAX_LOG_RATIO))
 *   loss = mean_i min(max(-A_i r_i, -A_i clamp(r_i, 1 - clip_low, 1 + clip_high)), dual_clip * relu(-A_i))
 *        + beta * mean((mean - ref_mean)^2) / (2 sigma^2)
 *
 * Dense mode (docs/grpo.md, "Dense advantages"): `logp_old` is the behaviour policy's per-element
 * log-density [N,3,H,W], and a second advantage input `advantage_map` [N,3,H-10,W-10] holds the
 * group-centred SSIM map. It is spread back onto pixels with the transpose of SSIM's Gaussian window,
 * scaled so the pixel weights average to the map's mean, and `advantage` [N] (the scalar terms, such
 * as the embedding reward) is added; ratio and clipping are then per element:
 *   A_e = HW/(hw) * ConvTranspose(D, window)_e + a_i,  r_e = exp(l_e - l_old_e)
 *   loss = mean_e max(-A_e r_e, -A_e clamp(r_e, ...)) + beta * KL
 *
 * With `identity` (grpo.identityAnchor > 0; docs/grpo.md, "Identity member") three more inputs:
 * `identity_advantage` [N] and, dense, `identity_advantage_map` [N,3,H-10,W-10] hold the identity member's
 * advantage on the first row of its group (zeros elsewhere; a group's rows share image and mean), spread onto
 * pixels as above, and `identity_weight` [] its weight lambda. The added term, ratio-free and bounded:
 *   z_e = (image_e - mean_e) / sigma,  h(z) = m (|z| - m / 2) with m = min(|z|, IDENTITY_HUBER)   (Huber)
 *   loss += lambda * mean_e relu(A^id_e) h(z_e)
 * Output `identity_loss`: the term before lambda.
 */
export function buildGrpoGraph(spec: PolicySpec, r: Resolution, mode: 'scalar' | 'dense' = 'scalar', identity = false, o: SharedRowsOption = {}): Graph {
  checkResolution(spec, r.height, r.width);
  const g = new Graph();
  const params = declareParams(g, spec);
  const image = imageInput(g, 'image', r);
  const action = imageInput(g, 'action', r);
  const { logpOld, advantage, advantageMap, refMean, clipLow, clipHigh, dualClip, beta } = grpoInputs(g, r, mode);

  const logStd = params.get(LOG_STD)!;
  const mean = policyMean(spec, params, image);
  const density = gaussianLogDensity(action, mean, logStd);
  const logp = reduceMean(density, [1, 2, 3]);
  const { ratio, perElement, clipped } = clippedSurrogate({ density, logp, logpOld, advantage, advantageMap, clipLow, clipHigh, dualClip, r });
  const clippedFraction = reduceMean(clipped);
  const policyLoss = reduceMean(perElement);
  const kl = mul(reduceMean(square(sub(mean, refMean))), mul(exp(mul(logStd, -2)), 0.5));
  let loss = add(policyLoss, mul(beta, kl));
  if (identity) {
    const idAdvantage = g.input('identity_advantage', ['N']);
    const idMap = mode === 'dense' ? g.input('identity_advantage_map', ['N', 3, r.height - SSIM_WINDOW + 1, r.width - SSIM_WINDOW + 1]) : undefined;
    const idWeight = g.input('identity_weight', []);
    const idPixels = idMap ? add(spreadSsimMap(idMap, r), unsqueeze(idAdvantage, [1, 2, 3])) : unsqueeze(idAdvantage, [1, 2, 3]);
    const z = abs(div(sub(image, mean), exp(logStd)));
    const m = min(z, IDENTITY_HUBER);
    const identityLoss = reduceMean(mul(relu(idPixels), mul(m, sub(z, mul(m, 0.5)))));
    loss = add(loss, mul(idWeight, identityLoss));
    g.output('identity_loss', identityLoss);
  }

  g.output('loss', loss);
  outputGradients(g, spec, params, loss);
  g.output('logp', logp);
  g.output('ratio', ratio);
  g.output('clip_fraction', clippedFraction);
  g.output('kl', kl);
  if (o.sharedRows) shareRepeatedRows(g, image);
  return g;
}

/**
 * The GRPO inputs both families' training graphs declare after their own: logp_old ([N], or [N,3,H,W] in dense
 * mode), advantage [N], advantage_map (dense), ref_mean, clip_low, clip_high, dual_clip, beta.
 */
export function grpoInputs(g: Graph, r: Resolution, mode: 'scalar' | 'dense'): {
  logpOld: Value; advantage: Value; advantageMap: Value | undefined; refMean: Value; clipLow: Value; clipHigh: Value; dualClip: Value; beta: Value;
} {
  const logpOld = mode === 'dense' ? imageInput(g, 'logp_old', r) : g.input('logp_old', ['N']);
  const advantage = g.input('advantage', ['N']);
  const advantageMap = mode === 'dense' ? g.input('advantage_map', ['N', 3, r.height - SSIM_WINDOW + 1, r.width - SSIM_WINDOW + 1]) : undefined;
  const refMean = imageInput(g, 'ref_mean', r);
  const clipLow = g.input('clip_low', []);
  const clipHigh = g.input('clip_high', []);
  const dualClip = g.input('dual_clip', []);
  const beta = g.input('beta', []);
  return { logpOld, advantage, advantageMap, refMean, clipLow, clipHigh, dualClip, beta };
}

/**
 * The clipped surrogate of both families' GRPO graphs (Flow-GRPO's form with dual-clip PPO's bound), per row
 * or, with an advantage map, per element:
 *   r = exp(min(logp - logp_old, MAX_LOG_RATIO)),  terms = min(max(-A r, -A clamp(r, 1 - clip_low, 1 + clip_high)), dual_clip * relu(-A))
 * The log-ratio is capped at MAX_LOG_RATIO (e^20 = 4.9e8): past both clips (1 + clip_high for A > 0, dual_clip for
 * A < 0) a term has no gradient anyway, and the cap keeps a ratio from overflowing (logp_old = -3e38 is finite
 * float32), whose zero gradient would be 0 * inf = NaN and skip the batch. The outer min is dual clip (Ye et al. 2020): for A < 0 a term never exceeds dual_clip * |A|, so a ratio above
 * dual_clip (a behaviour log-probability far below the learner's: stale, broken or forged) passes no gradient;
 * for A >= 0 the PPO term is <= 0 = the bound, so nothing changes. `density` [N,3,H,W] is the per-element
 * log-density, `logp` its mean per row. Returns the ratio per row (the elements' mean in dense mode), the terms
 * before reduction, and the clipped indicator (per row, or per element in dense mode) for the clip fraction.
 */
export function clippedSurrogate(o: {
  density: Value; logp: Value; logpOld: Value; advantage: Value; advantageMap: Value | undefined; clipLow: Value; clipHigh: Value; dualClip: Value; r: Resolution;
}): { ratio: Value; perElement: Value; clipped: Value } {
  const lo = sub(1, o.clipLow);
  const hi = add(1, o.clipHigh);
  // PPO's pessimistic term, then dual clip's ceiling for negative advantages (ties keep the PPO term's gradient)
  const terms = (adv: Value, ratio: Value) => min(max(mul(neg(adv), ratio), mul(neg(adv), clip(ratio, lo, hi))), mul(relu(neg(adv)), o.dualClip));
  if (o.advantageMap) {
    const ratioE = exp(min(sub(o.density, o.logpOld), MAX_LOG_RATIO));
    const adv = add(spreadSsimMap(o.advantageMap, o.r), unsqueeze(o.advantage, [1, 2, 3]));
    const ratio = reduceMean(ratioE, [1, 2, 3]);
    return { ratio, perElement: terms(adv, ratioE), clipped: cast(or(less(ratioE, lo), greater(ratioE, hi)), 'float32') };
  }
  const ratio = exp(min(sub(o.logp, o.logpOld), MAX_LOG_RATIO));
  return { ratio, perElement: terms(o.advantage, ratio), clipped: cast(or(less(ratio, lo), greater(ratio, hi)), 'float32') };
}

/**
 * Spreads a per-window SSIM advantage map [N,3,H-10,W-10] back onto pixels [N,3,H,W]: the transpose of
 * the Gaussian window (a depthwise ConvTranspose), scaled by HW/(hw) so that the mean over pixels
 * equals the mean over windows.
 */
export function spreadSsimMap(map: Value, r: Resolution): Value {
  const g = map.graph;
  const k = gaussianWindow1d();
  const K = SSIM_WINDOW;
  // The window is separable: two depthwise 1-D transposed convolutions (vertical, then horizontal).
  const taps = new Float32Array(3 * K);
  for (let c = 0; c < 3; c++) taps.set(k, c * K);
  const vertical = convTranspose(map, g.constant(taps, [3, 1, K, 1]), undefined, { group: 3 });
  const spread = convTranspose(vertical, g.constant(taps, [3, 1, 1, K]), undefined, { group: 3 });
  const h = r.height - K + 1;
  const wd = r.width - K + 1;
  return mul(spread, (r.height * r.width) / (h * wd));
}

export type SftLoss = 'l2' | 'l1' | 'psnr';

/**
 * The `psnr` loss's floor on each image's mean squared error: 1e-5, a 50 dB ceiling on the PSNR it rewards
 * (finer than 8-bit quantisation's 59 dB), so that an image the corruption left untouched (MSE 0) gives a
 * finite loss and gradient.
 */
export const PSNR_LOSS_MSE_FLOOR = 1e-5;

/**
 * SFT (warm start toward the clean image): param.*, image, target -> loss, grad.*. The loss: l2 or l1, the
 * mean squared or absolute error over every pixel of the batch; psnr, minus the mean per-image PSNR,
 * mean_i 10 log10(mse_i + PSNR_LOSS_MSE_FLOOR), the evaluation's PSNR averaged per image as it is there, so a
 * change to a mildly corrupted image (small mse_i) costs more than the same change to a badly corrupted one.
 */
export function buildSftGraph(spec: PolicySpec, r: Resolution, lossKind: SftLoss): Graph {
  checkResolution(spec, r.height, r.width);
  const g = new Graph();
  const params = declareParams(g, spec);
  const image = imageInput(g, 'image', r);
  const target = imageInput(g, 'target', r);
  const diff = sub(policyMean(spec, params, image), target);
  const loss = lossKind === 'psnr'
    ? mul(reduceMean(log(add(reduceMean(square(diff), [1, 2, 3]), PSNR_LOSS_MSE_FLOOR))), 10 / Math.LN10)
    : reduceMean(lossKind === 'l2' ? square(diff) : abs(diff));
  g.output('loss', loss);
  outputGradients(g, spec, params, loss);
  return g;
}

export interface RewardGraphOptions {
  /** The image encoder (CLIP vision tower contract) as ONNX bytes, and its name for messages and docs. */
  encoder: Uint8Array;
  encoderName: string;
  /** The encoder's own preprocessing of [N,3,H,W] images in [0,1] (default: CLIP's). */
  preprocess?: ImageEncoder['preprocess'];
  /**
   * Each distinct reference through the encoder once (embeddingCosineSharedReference; two more inputs,
   * REFERENCE_ROWS and PAIR_ROWS): the same values. The scorer's own sessions; the exported graph keeps the plain
   * contract of docs/graphs.md.
   */
  sharedReferences?: boolean;
  /**
   * SSIM's filter (ssim.ts SsimOptions.fold): true (default), the folded one, fastest at several pairs a run;
   * false, the plain one, fastest at one pair a run (the scorer's lanes: SSIM_LANE_RUN_BATCH). The same values.
   */
  ssimFold?: boolean;
}

/** reward: candidate, reference [N,3,H,W] in [0,1] -> ssim [N], clip_cos [N], ssim_map [N,3,H-10,W-10]. */
export function buildRewardGraph(r: Resolution, opts: RewardGraphOptions, opset = 17): Graph {
  const g = new Graph(opset);
  const candidate = imageInput(g, 'candidate', r);
  const reference = imageInput(g, 'reference', r);
  const fold = { fold: opts.ssimFold ?? true };
  g.output('ssim', ssim(candidate, reference, fold));
  g.output('ssim_map', ssimMap(candidate, reference, fold));
  const encoder = { name: opts.encoderName, preprocess: opts.preprocess ?? clipPreprocess, encode: splicedEncoder(opts.encoder, opts.encoderName) };
  g.output('clip_cos', opts.sharedReferences ? embeddingCosineSharedReference(candidate, reference, encoder) : embeddingCosine(candidate, reference, encoder));
  return g;
}


/**
 * Direct reward backprop, the upper reference that GRPO is measured against (docs/dense-advantages.md):
 * the reward graph differentiated end to end through the policy mean. param.*, image, reference,
 * d_ssim [N], d_clip_cos [N] -> loss, grad.*, ssim [N], clip_cos [N]:
 *   candidate = clamp(mean, 0, 1)            (as every action is clamped before it is scored)
 *   loss = -mean_i (d_ssim_i * ssim_i + d_clip_cos_i * clip_cos_i)
 * With d_* the reward expression's partial derivatives at the current components (the caller evaluates
 * them), grad is the gradient of -mean reward. Only the built-in encoder (or an `encode` function made of
 * graph ops, such as the converted pretrained network) is differentiable here: an encoder spliced from
 * ONNX is forward-only, so it is refused. `preprocess` is the encoder's own (default: CLIP's).
 */
export function buildRewardBackpropGraph(
  spec: PolicySpec,
  r: Resolution,
  encoderName: string,
  encode?: (pixels: Value) => Value,
  preprocess: ImageEncoder['preprocess'] = clipPreprocess,
): Graph {
  if (!encode && encoderName !== BUILTIN_ENCODER_NAME) {
    throw new Error(`direct reward backprop differentiates the encoder, and only the built-in one (${BUILTIN_ENCODER_NAME}) is built from differentiable ops; ${encoderName} is spliced from ONNX and forward-only`);
  }
  checkResolution(spec, r.height, r.width);
  const g = new Graph();
  const params = declareParams(g, spec);
  const image = imageInput(g, 'image', r);
  const reference = imageInput(g, 'reference', r);
  const dSsim = g.input('d_ssim', ['N']);
  const dClip = g.input('d_clip_cos', ['N']);
  const candidate = clip(policyMean(spec, params, image), 0, 1);
  const s = ssim(candidate, reference, { fold: false }); // differentiable ops only
  const cos = embeddingCosine(candidate, reference, { name: encoderName, preprocess, encode: encode ?? builtinEncoder });
  const loss = neg(reduceMean(add(mul(dSsim, s), mul(dClip, cos))));
  g.output('loss', loss);
  outputGradients(g, spec, params, loss);
  g.output('ssim', s);
  g.output('clip_cos', cos);
  return g;
}
