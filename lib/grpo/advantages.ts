// Group-relative advantages, as Flow-GRPO computes them. Which variant a run uses is chosen in one place,
// lib/grpo/algorithm.ts `advantagesOf`; nothing else calls these functions outside tests.
//
// A group is the G actions proposed for ONE sample id (never grouped by prompt text). For action i:
//
//     A_i = clip( (r_i - mean_g r_g) / (std_g r_g + eps), -advClip, +advClip )      eps = 1e-4, advClip = 5
//
// std is the POPULATION standard deviation (divide by G), as Flow-GRPO's stat tracker uses np.std
// (ddof=0), i.e. torch's std(unbiased=False).
//
// Variants:
//   stdNormalize: false          Dr. GRPO: A_i = r_i - mean_g r_g (then clipped).
//   dropZeroVarianceGroups       DAPO: a group whose rewards are all equal (std < 1e-8) carries no
//                                signal and is dropped; kept, it gets advantages of exactly 0.
//   multi-reward 'sum'           reward = sum_k w_k x_k, then the formula above.
//   multi-reward                 GDPO: A_i = sum_k w_k (x_ik - mean_g x_gk) / (std_g x_gk + eps): each term
//     'normalize-then-sum'       is normalised within the group on its own, so a small-variance term is
//                                not drowned by a large-variance one. (GDPO's paper then standardises the
//                                summed advantages over the whole batch; this project does not.)
//   dense                        per-location SSIM advantages, see `denseAdvantages`.

export interface AdvantageOptions {
  /** Divide by the group's reward std (GRPO). false: Dr. GRPO. Default true. */
  stdNormalize?: boolean;
  /** Added to the std before dividing. Default 1e-4 (Flow-GRPO). */
  stdEps?: number;
  /** Advantages are clipped to +-advClip. Default 5 (Flow-GRPO); Infinity: no clipping. */
  advClip?: number;
  /** Drop groups whose rewards are all equal instead of giving them zero advantages. Default false. */
  dropZeroVarianceGroups?: boolean;
}

export type MultiRewardMode = 'sum' | 'normalize-then-sum';

/** Rewards whose population std is below this are "all equal". */
export const ZERO_VARIANCE_STD = 1e-8;

export interface GroupAdvantages {
  advantages: Float32Array;
  /** Mean and population std of the group's scalar rewards (for logging). */
  mean: number;
  std: number;
  /** With an identity member: its advantage against the sampled actions' statistics. */
  identity?: number;
}

export interface DroppedGroup {
  dropped: 'zero-variance';
  reason: string;
  mean: number;
  std: number;
}

interface Resolved { stdNormalize: boolean; stdEps: number; advClip: number; dropZeroVarianceGroups: boolean }

function resolve(o: AdvantageOptions): Resolved {
  const r = { stdNormalize: o.stdNormalize ?? true, stdEps: o.stdEps ?? 1e-4, advClip: o.advClip ?? 5, dropZeroVarianceGroups: o.dropZeroVarianceGroups ?? false };
  if (!(r.stdEps >= 0) || !Number.isFinite(r.stdEps)) throw new Error(`advantages: stdEps must be a finite number >= 0, got ${r.stdEps}`);
  if (!(r.advClip > 0)) throw new Error(`advantages: advClip must be > 0 (Infinity for no clipping), got ${r.advClip}`);
  return r;
}

function checkRewards(what: string, xs: readonly number[], minLength = 2): void {
  if (xs.length < minLength) throw new Error(`advantages: ${what} has ${xs.length} entries; a group needs at least ${minLength} actions`);
  xs.forEach((x, i) => {
    if (typeof x !== 'number' || !Number.isFinite(x)) throw new Error(`advantages: ${what}[${i}] is ${String(x)}, not a finite number`);
  });
}

/** Mean and population standard deviation (np.std, ddof = 0), in float64. */
export function meanStd(xs: ArrayLike<number>): { mean: number; std: number } {
  const n = xs.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += xs[i]!;
  mean /= n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (xs[i]! - mean) ** 2;
  return { mean, std: Math.sqrt(v / n) };
}

const clip = (x: number, c: number) => Math.min(Math.max(x, -c), c);

function zeroVariance(mean: number, std: number, o: Resolved, G: number): GroupAdvantages | DroppedGroup {
  if (o.dropZeroVarianceGroups) return { dropped: 'zero-variance', reason: `all ${G} rewards equal ${mean} (std ${std} < ${ZERO_VARIANCE_STD})`, mean, std };
  return { advantages: new Float32Array(G), mean, std };
}

/**
 * Advantages of one group from its scalar rewards (one per action, in group-index order). With
 * `identityReward` (the identity member, docs/grpo.md "Identity member") its advantage is measured against
 * the SAMPLED actions' statistics, A_0 = clip((r_0 - mean_g r) / (std_g r + eps)), and the sampled actions'
 * advantages are exactly those without it; a zero-variance group gives it 0 as it gives every action.
 */
export function groupAdvantages(rewards: readonly number[], opts: AdvantageOptions = {}, identityReward?: number): GroupAdvantages | DroppedGroup {
  const o = resolve(opts);
  checkRewards('rewards', rewards);
  if (identityReward !== undefined) checkRewards('identityReward', [identityReward], 1);
  const { mean, std } = meanStd(rewards);
  if (std < ZERO_VARIANCE_STD) {
    const z = zeroVariance(mean, std, o, rewards.length);
    return identityReward !== undefined && !('dropped' in z) ? { ...z, identity: 0 } : z;
  }
  const denom = o.stdNormalize ? std + o.stdEps : 1;
  const advantages = Float32Array.from(rewards, (r) => clip((r - mean) / denom, o.advClip));
  if (identityReward === undefined) return { advantages, mean, std };
  return { advantages, mean, std, identity: clip((identityReward - mean) / denom, o.advClip) };
}

/**
 * Advantages of one group from several reward terms: `terms[i][k]` is term k of action i, and the
 * reward is sum_k weights[k] * terms[i][k] (see `rewardTerms` in reward-expression.ts).
 * 'sum': normalise the summed reward. 'normalize-then-sum' (GDPO): normalise each term in the group,
 * then sum with the weights. In both, clipping is applied last; the group is zero-variance when every
 * term (hence the reward) is constant over the group.
 */
export function multiRewardGroupAdvantages(
  terms: readonly (readonly number[])[], weights: readonly number[], mode: MultiRewardMode, opts: AdvantageOptions = {},
): GroupAdvantages | DroppedGroup {
  const o = resolve(opts);
  const K = weights.length;
  checkRewards('weights', weights, 1);
  if (terms.length < 2) throw new Error(`advantages: terms has ${terms.length} actions; a group needs at least 2`);
  terms.forEach((t, i) => {
    if (t.length !== K) throw new Error(`advantages: terms[${i}] has ${t.length} entries, expected ${K} (one per weight)`);
    checkRewards(`terms[${i}]`, t, K);
  });
  const rewards = terms.map((t) => t.reduce((s, x, k) => s + weights[k]! * x, 0));
  if (mode === 'sum') return groupAdvantages(rewards, opts);
  if (mode !== 'normalize-then-sum') throw new Error(`advantages: unknown multi-reward mode '${String(mode)}'`);

  const { mean, std } = meanStd(rewards);
  const perTerm = weights.map((_, k) => meanStd(terms.map((t) => t[k]!)));
  if (perTerm.every((s) => s.std < ZERO_VARIANCE_STD)) return zeroVariance(mean, std, o, terms.length);
  const advantages = Float32Array.from(terms, (t) => {
    let a = 0;
    for (let k = 0; k < K; k++) {
      const s = perTerm[k]!;
      if (s.std < ZERO_VARIANCE_STD) continue; // a constant term contributes exactly 0
      a += (weights[k]! * (t[k]! - s.mean)) / (o.stdNormalize ? s.std + o.stdEps : 1);
    }
    return clip(a, o.advClip);
  });
  return { advantages, mean, std };
}

// ---------------------------------------------------------------------------------------------------
// Dense advantages (DESIGN.md, "Making the RL stage pay off").
//
// With reward r_i = w * ssim_i + t_i, where ssim_i is the mean of the action's SSIM map S_i(c, p)
// (channel c, valid window p) and t_i the rest of the reward (the CLIP term), the SSIM part of the
// scalar advantage, w (ssim_i - mean_g ssim_g) / (std_g r_g + eps), is the mean over locations of
//
//     D_i(c, p) = w * (S_i(c, p) - mean_g S_g(c, p)) / (std_g r_g + eps)
//
// which says WHERE the action beat its group. The rest keeps one scalar per action:
//
//     T_i = (t_i - mean_g t_g) / (std_g r_g + eps)
//
// so mean_p D_i + T_i is exactly the scalar advantage A_i (clipped as below). The GRPO graph spreads D_i
// back onto pixels with the transpose of the 11x11 Gaussian SSIM window (a ConvTranspose), scaled by
// (H W) / (h w) so that the pixel advantages average to mean_p D_i (`spreadToPixels` is the reference),
// adds T_i to every pixel, and weights each pixel's log-density by its own advantage.
//
// Clipping acts on each action's total, as it does on a scalar advantage: where |mean_p D_i + T_i| > advClip,
// D_i and T_i are scaled together by advClip / |mean_p D_i + T_i|, so the action's mean advantage is exactly the
// clipped scalar one and its map keeps its shape. Windows are not clipped one by one: a window's SSIM differs
// between actions far more than the image's mean does, while s is the std of the whole-image rewards, so per
// window values of 3-5 s are common and a per-window clip bit 30-80% of windows on photographs, breaking
// mean_p D_i + T_i = A_i (docs/grpo.md section 3, round 24).

export interface DenseAdvantages {
  /** Per action, the centred SSIM map D_i, same layout as the input maps ([3, h, w]). */
  maps: Float32Array[];
  /** Per action, the scalar part T_i of the rest of the reward. */
  scalar: Float32Array;
  mean: number;
  std: number;
  /** With an identity member: its map D_0 and scalar part T_0, centred on the sampled actions' statistics. */
  identity?: { map: Float32Array; scalar: number };
}

/** The identity member of a dense group: its SSIM map, reward and rest of the reward, as an action's. */
export interface DenseIdentity {
  ssimMap: Float32Array;
  reward: number;
  otherTerm: number;
}

export interface DenseOptions extends AdvantageOptions {
  /**
   * Each map's mean must equal the SSIM its reward was made of within this: |r_i - (w * mean(S_i) + t_i)| <=
   * consistencyTol * |w| (+ 1e-9 for float64 rounding), or the maps, rewards and split disagree (maps of other
   * images, a wrong weight). Default 1e-3; Infinity disables the check.
   */
  consistencyTol?: number;
}

export function denseAdvantages(
  ssimMaps: readonly Float32Array[], scalarRewards: readonly number[], otherTerms: readonly number[], ssimWeight: number,
  opts: DenseOptions = {}, identity?: DenseIdentity,
): DenseAdvantages | DroppedGroup {
  const o = resolve(opts);
  const G = ssimMaps.length;
  checkRewards('scalarRewards', scalarRewards);
  checkRewards('otherTerms', otherTerms);
  if (scalarRewards.length !== G || otherTerms.length !== G) {
    throw new Error(`dense advantages: ${G} SSIM maps, ${scalarRewards.length} rewards and ${otherTerms.length} other terms; expected one each per action`);
  }
  if (!Number.isFinite(ssimWeight)) throw new Error(`dense advantages: ssimWeight is ${ssimWeight}`);
  const L = ssimMaps[0]!.length;
  if (L === 0) throw new Error('dense advantages: SSIM maps are empty');
  ssimMaps.forEach((m, i) => {
    if (m.length !== L) throw new Error(`dense advantages: SSIM map ${i} has ${m.length} values, map 0 has ${L}`);
  });

  const meanMap = new Float64Array(L);
  // each map's sum, in index order: the consistency check below reads it (the same float64 sum it would redo)
  const sums = new Float64Array(G);
  for (let i = 0; i < G; i++) {
    const m = ssimMaps[i]!;
    let s = 0;
    for (let l = 0; l < L; l++) { const v = m[l]!; meanMap[l]! += v; s += v; }
    if (!Number.isFinite(s)) throw new Error(`dense advantages: SSIM map ${i} holds a non-finite value`);
    sums[i] = s;
  }
  for (let l = 0; l < L; l++) meanMap[l]! /= G;

  const tol = opts.consistencyTol ?? 1e-3;
  const sumOf = (map: Float32Array) => {
    let s = 0;
    for (let l = 0; l < L; l++) s += map[l]!;
    return s;
  };
  const consistent = (what: string, s: number, reward: number, other: number) => {
    const r = ssimWeight * (s / L) + other;
    // tol bounds the map mean's error, so the reward's allows |w| times it
    if (!(Math.abs(r - reward) <= tol * Math.abs(ssimWeight) + 1e-9)) {
      throw new Error(`dense advantages: ${what}: reward ${reward} != ${ssimWeight} * mean(SSIM map) ${s / L} + other terms ${other} = ${r} (tolerance ${tol} on the map mean)`);
    }
  };
  for (let i = 0; i < G; i++) consistent(`action ${i}`, sums[i]!, scalarRewards[i]!, otherTerms[i]!);
  if (identity) {
    if (identity.ssimMap.length !== L) throw new Error(`dense advantages: the identity's SSIM map has ${identity.ssimMap.length} values, map 0 has ${L}`);
    checkRewards('identity reward and other term', [identity.reward, identity.otherTerm], 2);
    consistent('identity', sumOf(identity.ssimMap), identity.reward, identity.otherTerm);
  }

  const { mean, std } = meanStd(scalarRewards);
  if (std < ZERO_VARIANCE_STD) {
    if (o.dropZeroVarianceGroups) return zeroVariance(mean, std, o, G) as DroppedGroup;
    return { maps: ssimMaps.map(() => new Float32Array(L)), scalar: new Float32Array(G), mean, std, ...(identity ? { identity: { map: new Float32Array(L), scalar: 0 } } : {}) };
  }
  const denom = o.stdNormalize ? std + o.stdEps : 1;
  const t = meanStd(otherTerms);
  // One action's D and T, both scaled by the factor that clips their total mean_p D + T to +-advClip.
  // D(l) = w (S(l) - mean S(l)) / denom, computed twice (the same float64 both times): once for its sum, once to write
  // it scaled, so no float64 copy of the map is made. A plain loop, not Float32Array.from(d, (x) => x * f): the same
  // float32 of each product without a callback per element (that was a quarter of the orchestrator's busy time:
  // docs/performance-history/pipeline.md, "Round 27: orch27").
  const centre = (m: Float32Array, other: number): { map: Float32Array; scalar: number } => {
    let sum = 0;
    for (let l = 0; l < L; l++) sum += (ssimWeight * (m[l]! - meanMap[l]!)) / denom;
    const T = (other - t.mean) / denom;
    const total = sum / L + T;
    const f = Math.abs(total) > o.advClip ? o.advClip / Math.abs(total) : 1;
    const map = new Float32Array(L);
    for (let l = 0; l < L; l++) map[l] = ((ssimWeight * (m[l]! - meanMap[l]!)) / denom) * f;
    return { map, scalar: T * f };
  };
  const parts = ssimMaps.map((m, i) => centre(m, otherTerms[i]!));
  const maps = parts.map((p) => p.map);
  const scalar = Float32Array.from(parts, (p) => p.scalar);
  if (!identity) return { maps, scalar, mean, std };
  return { maps, scalar, mean, std, identity: centre(identity.ssimMap, identity.otherTerm) };
}

/**
 * Reference for the graph: spreads a dense map D [C, h, w] (one value per valid SSIM window) back onto
 * the pixels [C, h + k - 1, w + k - 1] with the transpose of the separable window (k = window1d.length,
 * summing to 1), scaled by (H W) / (h w), so that mean(pixels) = mean(D).
 */
export function spreadToPixels(D: Float32Array, channels: number, h: number, w: number, window1d: Float32Array): Float32Array {
  if (D.length !== channels * h * w) throw new Error(`spreadToPixels: D has ${D.length} values, expected ${channels}x${h}x${w}`);
  const k = window1d.length;
  const H = h + k - 1;
  const W = w + k - 1;
  const scale = (H * W) / (h * w);
  const out = new Float32Array(channels * H * W);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const d = D[(c * h + y) * w + x]! * scale;
        for (let dy = 0; dy < k; dy++) {
          const row = (c * H + y + dy) * W + x;
          const wy = window1d[dy]! * d;
          for (let dx = 0; dx < k; dx++) out[row + dx]! += wy * window1d[dx]!;
        }
      }
    }
  }
  return out;
}
