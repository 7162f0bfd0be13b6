// GRPO, the algorithm, in one place (docs/grpo.md). Everything that decides WHAT is trained lives here;
// the orchestrator, the learner and the single-process loop (lib/local/single-process.ts) only move data
// and call these functions, so the two loops cannot disagree:
//
//   compileAlgorithm(config)       the reward function and the advantage variant the run's settings select
//                                  (the schema has already refused impossible combinations)
//   rewardsOf(algo, components)    the scalar reward of each action of a group
//   advantagesOf(algo, group)      a group's advantages for every variant: scalar GRPO, Dr. GRPO
//                                  (stdNormalize false), DAPO's zero-variance drop, GDPO
//                                  (multiRewardMode normalize-then-sum) and dense SSIM-map advantages
//   grpoHyper(config)              the hyper-parameters a GRPO step feeds to the training graph
//   startGrpoPhase(params, opt)    what starting GRPO means: the current parameters become the frozen KL
//                                  reference and AdamW starts afresh (stage II is a new optimisation)
//   needsReferenceForward(hyper)   beta 0: the KL term vanishes and the reference forward is skipped
//   grpoLossReference(...)         the training graph's loss and its gradient in plain TypeScript, the
//                                  reference the graph (lib/models/graphs.ts buildGrpoGraph) is tested against

import type { RunConfig } from '../config/index.ts';
import { cloneTensorMap, zerosLike, type TensorMap } from '../checkpoint/tensors.ts';
import type { AdamW } from '../optim/adamw.ts';
import {
  compileRewardExpression, decomposeForDense, rewardConstants, rewardTerms,
  type Components, type DenseDecomposition, type RewardFunction, type RewardTerms,
} from './reward-expression.ts';
import { denseAdvantages, groupAdvantages, multiRewardGroupAdvantages, type AdvantageOptions } from './advantages.ts';

export type AdvantageVariant = 'scalar' | 'gdpo' | 'dense';

export interface GrpoAlgorithm {
  readonly variant: AdvantageVariant;
  readonly reward: RewardFunction;
  /** GDPO: the weighted terms of the reward expression, normalised one by one. */
  readonly terms: RewardTerms | null;
  /** Dense: the reward split as ssimWeight * ssim + rest. */
  readonly dense: DenseDecomposition | null;
  readonly advantageOptions: Readonly<AdvantageOptions>;
  readonly groupSize: number;
  /** grpo.identityAnchor: the identity member's weight (0: no identity member). */
  readonly identityAnchor: number;
}

/**
 * How far an SSIM map's mean may lie from the `ssim` its reward was made of (reward == w * mean(map) + rest
 * within |w| times this). The maps travel as float32, as computed, so the two differ by float32 summation only
 * (about 1e-6); a map of another image or a wrong weight misses by 1e-2 or more.
 */
export const DENSE_MAP_TOLERANCE = 1e-3;

/**
 * The algorithm the run's settings select. Throws, naming the expression and the problem, when the reward
 * expression cannot serve the selected variant (a dense run whose reward is not linear in ssim, GDPO over an
 * expression that is not a weighted sum); the schema (lib/config/schema.ts) refuses the same cases at load.
 */
export function compileAlgorithm(config: Pick<RunConfig, 'reward' | 'grpo'>): GrpoAlgorithm {
  const g = config.grpo;
  const constants = rewardConstants(config.reward);
  const reward = compileRewardExpression(config.reward.expression, constants);
  if (g.advantageMode === 'dense' && g.multiRewardMode === 'normalize-then-sum') {
    throw new Error('config: grpo.advantageMode dense cannot be combined with grpo.multiRewardMode normalize-then-sum');
  }
  const dense = g.advantageMode === 'dense' ? decomposeForDense(config.reward.expression, constants) : null;
  const terms = g.multiRewardMode === 'normalize-then-sum' ? rewardTerms(config.reward.expression, constants) : null;
  return {
    variant: dense ? 'dense' : terms ? 'gdpo' : 'scalar',
    reward,
    terms,
    dense,
    advantageOptions: Object.freeze({ stdNormalize: g.stdNormalize, stdEps: g.stdEps, advClip: g.advantageClip, dropZeroVarianceGroups: g.dropZeroVarianceGroups }),
    groupSize: g.groupSize,
    identityAnchor: g.identityAnchor,
  };
}

/** The reward of each action; throws naming the action whose components give no finite reward. */
export function rewardsOf(algo: GrpoAlgorithm, components: readonly Components[]): number[] {
  return components.map((c, i) => {
    try {
      return algo.reward.evaluate(c);
    } catch (e) {
      throw new Error(`components[${i}]: ${(e as Error).message}`);
    }
  });
}

export interface ScoredGroup {
  components: readonly Components[];
  rewards: readonly number[];
  /** Dense: the G SSIM maps [3, h, w] of the actions, in group order. */
  ssimMaps?: readonly Float32Array[];
  /** The identity member (grpo.identityAnchor > 0): its components, reward and (dense) SSIM map. */
  identity?: { components: Components; reward: number; ssimMap?: Float32Array };
}

/** The identity member's advantage: A_0 (scalar), or the scalar part T_0 and the map D_0 (dense). */
export interface IdentityAdvantage {
  advantage: number;
  map?: Float32Array;
}

export type GroupOutcome =
  | { kept: true; advantages: Float32Array; advantageMaps?: Float32Array[]; identity?: IdentityAdvantage; mean: number; std: number }
  | { kept: false; reason: 'zero_variance'; detail: string; mean: number; std: number };

/** A group's advantages under the run's variant, or why the group is dropped (DAPO). */
export function advantagesOf(algo: GrpoAlgorithm, group: ScoredGroup): GroupOutcome {
  const G = algo.groupSize;
  if (group.components.length !== G || group.rewards.length !== G) {
    throw new Error(`advantages: a group has ${group.components.length} components and ${group.rewards.length} rewards, expected ${G} each (grpo.groupSize)`);
  }
  const o = algo.advantageOptions;
  const id = group.identity;
  if ((algo.identityAnchor > 0) !== (id !== undefined)) {
    throw new Error(`advantages: grpo.identityAnchor is ${algo.identityAnchor} but the group ${id ? 'has' : 'has no'} identity member`);
  }
  if (algo.dense) {
    if (!group.ssimMaps || group.ssimMaps.length !== G) throw new Error(`dense advantages: ${group.ssimMaps?.length ?? 0} SSIM maps, expected ${G}`);
    if (id && !id.ssimMap) throw new Error('dense advantages: the identity member has no SSIM map');
    const rest = group.components.map((c) => algo.dense!.rest.evaluate(c));
    const identity = id ? { ssimMap: id.ssimMap!, reward: id.reward, otherTerm: algo.dense.rest.evaluate(id.components) } : undefined;
    const d = denseAdvantages(group.ssimMaps, group.rewards, rest, algo.dense.ssimWeight, { ...o, consistencyTol: DENSE_MAP_TOLERANCE }, identity);
    if ('dropped' in d) return { kept: false, reason: 'zero_variance', detail: d.reason, mean: d.mean, std: d.std };
    return { kept: true, advantages: d.scalar, advantageMaps: d.maps, ...(d.identity ? { identity: { advantage: d.identity.scalar, map: d.identity.map } } : {}), mean: d.mean, std: d.std };
  }
  const a = algo.terms
    ? multiRewardGroupAdvantages(group.components.map((c) => algo.terms!.terms.map((t) => t.evaluate(c))), algo.terms.terms.map((t) => t.weight), 'normalize-then-sum', o)
    : groupAdvantages(group.rewards, o, id?.reward);
  if ('dropped' in a) return { kept: false, reason: 'zero_variance', detail: a.reason, mean: a.mean, std: a.std };
  return { kept: true, advantages: a.advantages, ...(a.identity !== undefined ? { identity: { advantage: a.identity } } : {}), mean: a.mean, std: a.std };
}

/**
 * grpo.dualClip's default, dual-clip PPO's c (Ye et al. 2020): for A < 0 a loss term is at most c |A|, so ratios
 * above c pass no gradient. docs/grpo.md, "Dual clip".
 */
export const DUAL_CLIP_DEFAULT = 3;

/**
 * The log-ratio cap of the training graph (lib/models/graphs.ts imports it): past both clips a term has no gradient,
 * and the cap keeps exp from overflowing (a zero gradient times an infinite ratio is NaN).
 */
export const MAX_LOG_RATIO = 20;

/** The hyper-parameters of one GRPO step: explicit inputs of the training graph and of AdamW. */
export interface GrpoHyper {
  clipLow: number;
  clipHigh: number;
  beta: number;
  lr: number;
  /** grpo.dualClip (absent: DUAL_CLIP_DEFAULT). */
  dualClip?: number;
  /** grpo.identityAnchor, the identity term's weight (fed to the graph; absent: 0). */
  identityAnchor?: number;
}

export function grpoHyper(config: Pick<RunConfig, 'grpo' | 'optim'>): GrpoHyper {
  return { clipLow: config.grpo.clipLow, clipHigh: config.grpo.clipHigh, dualClip: config.grpo.dualClip, beta: config.grpo.beta, lr: config.optim.lr, identityAnchor: config.grpo.identityAnchor };
}

/**
 * The identity term's Huber threshold, in units of sigma: within it the term is the identity's Gaussian
 * log-density (its gradient on the mean is (x - mean) / sigma^2, as a sampled action's), beyond it the pull is
 * constant (sigma^-1 per element), so a mean far from the corrupted image is never pulled harder than a
 * sampled action one sigma away pushes it.
 */
export const IDENTITY_HUBER = 1;

/** beta 0: the KL term is multiplied by 0, so the reference policy's forward pass is skipped. */
export function needsReferenceForward(hyper: Pick<GrpoHyper, 'beta'>): boolean {
  return hyper.beta > 0;
}

/**
 * Starting the GRPO phase: returns a frozen copy of the current parameters (the KL reference) and resets
 * AdamW's moments and step count. Called once, before the first GRPO update, by the learner and by the
 * single-process loop.
 */
export function startGrpoPhase(params: TensorMap, optimizer: AdamW): TensorMap {
  optimizer.importState({ step: 0, m: zerosLike(params), v: zerosLike(params) });
  return cloneTensorMap(params);
}

// ---------------------------------------------------------------------------------------------------
// The loss, in plain TypeScript (float64), as buildGrpoGraph computes it:
//
//   l_e   = -(a_e - mu_e)^2 / (2 sigma^2) - log sigma - log(2 pi) / 2         per element e of action i
//   scalar: r_i = exp(mean_e l_e - logp_old_i),  A_i = advantage_i
//           loss = mean_i min(max(-A_i r_i, -A_i clamp(r_i, 1 - clipLow, 1 + clipHigh)), c relu(-A_i))
//   dense:  r_e = exp(l_e - logp_old_e),  A_e = spread(D_i)_e + advantage_i   (spread: `spreadToPixels`)
//           loss = mean_e min(max(-A_e r_e, -A_e clamp(r_e, ...)), c relu(-A_e))
//   + beta * mean_e (mu_e - ref_e)^2 / (2 sigma^2)
//
// The log-ratio is capped at MAX_LOG_RATIO (no change: past both clips). c = dualClip (dual-clip PPO): for
// A < 0 the term is at most c |A|; for A >= 0 the PPO term is <= 0 and the bound (0) never binds. The gradient is with respect to the policy mean mu (per element) and log sigma, the two
// places the parameters enter; the max picks the clipped branch where it is larger, the clamp passes no gradient
// outside [1 - clipLow, 1 + clipHigh], and the dual clip none where it binds.

export interface LossReferenceInputs {
  n: number;
  /** Policy mean and actions, [n * P] each (P elements per action). */
  mean: ArrayLike<number>;
  actions: ArrayLike<number>;
  logStd: number;
  /** [n] (scalar) or [n * P] (dense: the per-element behaviour log-density). */
  logpOld: ArrayLike<number>;
  /** [n]: the advantage (scalar) or the scalar part of it (dense). */
  advantages: ArrayLike<number>;
  /** Dense: the per-pixel advantage already spread onto the pixels, [n * P] (without the scalar part). */
  pixelAdvantages?: ArrayLike<number>;
  refMean: ArrayLike<number>;
  hyper: Pick<GrpoHyper, 'clipLow' | 'clipHigh' | 'beta' | 'identityAnchor' | 'dualClip'>;
  /**
   * The identity member: the corrupted images [n * P] (the batch's policy inputs) and its advantage per row,
   * [n] (scalar, or dense's scalar part) plus, dense, [n * P] spread onto pixels; nonzero only on the first row
   * of each group.
   */
  identity?: { images: ArrayLike<number>; advantages: ArrayLike<number>; pixelAdvantages?: ArrayLike<number> };
}

export interface LossReference {
  loss: number;
  kl: number;
  /** The identity term before its weight (0 without an identity member). */
  identityLoss: number;
  /** d loss / d mean, [n * P]. */
  dMean: Float64Array;
  /** d loss / d log sigma. */
  dLogStd: number;
}

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

export function grpoLossReference(x: LossReferenceInputs): LossReference {
  const { n, logStd } = x;
  const P = x.mean.length / n;
  if (!Number.isInteger(P) || P < 1) throw new Error(`grpoLossReference: mean has ${x.mean.length} values, not a multiple of n = ${n}`);
  const dense = x.pixelAdvantages !== undefined;
  const inv2s2 = 0.5 * Math.exp(-2 * logStd);
  const lo = 1 - x.hyper.clipLow;
  const hi = 1 + x.hyper.clipHigh;
  const dMean = new Float64Array(n * P);
  let dLogStd = 0;
  const c = x.hyper.dualClip ?? DUAL_CLIP_DEFAULT;
  // One PPO term of advantage A and ratio r, dual-clipped: its value and d term / d r.
  const ppo = (A: number, r: number): { v: number; dr: number } => {
    const unclipped = -A * r;
    const inside = r >= lo && r <= hi;
    const clipped = -A * Math.min(Math.max(r, lo), hi);
    // max(u, c): ties go to the first argument, as the graph's Max passes its gradient to the first input
    const t = unclipped >= clipped ? { v: unclipped, dr: -A } : { v: clipped, dr: inside ? -A : 0 };
    // dual clip, min(t, c relu(-A)): ties keep t, as the graph's Min passes its gradient to the first input
    const bound = c * Math.max(-A, 0);
    return t.v <= bound ? t : { v: bound, dr: 0 };
  };
  let policy = 0;
  for (let i = 0; i < n; i++) {
    const lp = new Float64Array(P);
    for (let e = 0; e < P; e++) {
      const d = x.actions[i * P + e]! - x.mean[i * P + e]!;
      lp[e] = -d * d * inv2s2 - logStd - HALF_LOG_2PI;
    }
    // dl_e/dmu_e = (a - mu) / sigma^2 = 2 d inv2s2; dl_e/dlogStd = (a - mu)^2 / sigma^2 - 1 = 2 d^2 inv2s2 - 1
    const dlMu = (e: number) => 2 * (x.actions[i * P + e]! - x.mean[i * P + e]!) * inv2s2;
    const dlS = (e: number) => 2 * (x.actions[i * P + e]! - x.mean[i * P + e]!) ** 2 * inv2s2 - 1;
    if (!dense) {
      let l = 0;
      for (let e = 0; e < P; e++) l += lp[e]!;
      l /= P;
      const r = Math.exp(Math.min(l - x.logpOld[i]!, MAX_LOG_RATIO));
      const t = ppo(x.advantages[i]!, r);
      policy += t.v / n;
      const g = (t.dr * r) / n / P; // d loss / d l_e for every e of action i
      for (let e = 0; e < P; e++) {
        dMean[i * P + e] = g * dlMu(e);
        dLogStd += g * dlS(e);
      }
    } else {
      for (let e = 0; e < P; e++) {
        const r = Math.exp(Math.min(lp[e]! - x.logpOld[i * P + e]!, MAX_LOG_RATIO));
        const t = ppo(x.pixelAdvantages![i * P + e]! + x.advantages[i]!, r);
        policy += t.v / (n * P);
        const g = (t.dr * r) / (n * P);
        dMean[i * P + e] = g * dlMu(e);
        dLogStd += g * dlS(e);
      }
    }
  }
  let sq = 0;
  for (let k = 0; k < n * P; k++) sq += (x.mean[k]! - x.refMean[k]!) ** 2;
  const kl = (sq / (n * P)) * inv2s2;
  const beta = x.hyper.beta;
  for (let k = 0; k < n * P; k++) dMean[k]! += (beta * 2 * (x.mean[k]! - x.refMean[k]!) * inv2s2) / (n * P);
  dLogStd += beta * -2 * kl;
  // The identity member: lambda * mean_e relu(A_e) h(z_e), z_e = (x_e - mu_e) / sigma, Huber h at IDENTITY_HUBER.
  // dh/dz = clamp(z, -c, c); dz/dmu = -1/sigma; dz/dlogStd = -z.
  let identityLoss = 0;
  const id = x.identity;
  if (id) {
    const lambda = x.hyper.identityAnchor ?? 0;
    const sigma = Math.exp(logStd);
    const c = IDENTITY_HUBER;
    for (let i = 0; i < n; i++) {
      for (let e = 0; e < P; e++) {
        const k = i * P + e;
        const A = Math.max(0, id.advantages[i]! + (id.pixelAdvantages ? id.pixelAdvantages[k]! : 0));
        if (A === 0) continue;
        const z = (id.images[k]! - x.mean[k]!) / sigma;
        const m = Math.min(Math.abs(z), c);
        identityLoss += (A * m * (Math.abs(z) - m / 2)) / (n * P);
        const dz = (lambda * A * Math.max(-c, Math.min(c, z))) / (n * P);
        dMean[k]! += -dz / sigma;
        dLogStd += -dz * z;
      }
    }
    return { loss: policy + beta * kl + lambda * identityLoss, kl, identityLoss, dMean, dLogStd };
  }
  return { loss: policy + beta * kl, kl, identityLoss, dMean, dLogStd };
}
