// The same-version check on behaviour log-probabilities (docs/grpo.md, "Dual clip and the same-version check";
// docs/security.md). A rollout worker sends logp_old with each action; for a row whose behaviour version is the
// learner's current version the learner's own forward computes the same quantity from the same weights, so the
// two agree up to float rounding. A row beyond grpo.logpTolerance is forged or broken: it is taken out of the step
// (advantage 0, its ratio made finite) before the update, so it can neither steer nor poison the step.
//
// Only batches in which some row fails pay for it (a second forward); an honest batch runs exactly as before.

/**
 * grpo.logpTolerance's default, in nats, on |logp - mean(logp_old)| per row and, per element (dense), on
 * |mean_e exp(l_e - l_old_e) - 1|. Both sides are float32 means of 3HW log-densities of magnitude up to about 10
 * (-log sigma - log(2 pi)/2 - z^2/2 at sigma 0.01): blocked summation's error is about log2(3HW) * 2^-24 * 10 =
 * 1e-5 at 256 x 256, and a GPU rollout worker's log-density differs from the CPU's by at most 2e-5 per element
 * (docs/gpu.md), so 1e-3 is 50x above what an honest worker shows. A lie within it changes a row's weight by a
 * factor e^1e-3 at most, and in dense mode moves at most that fraction of weight between the row's elements.
 */
export const LOGP_TOLERANCE_DEFAULT = 1e-3;

/**
 * grpo.staleCheckFraction's default: the fraction of stale groups (behaviour version below the learner's) whose rows
 * the learner recomputes under their version's parameters (stale-check.ts; docs/grpo.md, "The stale-row check", for
 * the bench that chose it). Here rather than in stale-check.ts, which the config schema need not load.
 */
export const STALE_CHECK_FRACTION_DEFAULT = 1;

/** What a training row's check needs: the learner's logp and ratio outputs, and logp_old as the batch carries it. */
export interface LogpCheckInputs {
  /** [R]: the learner's mean log-density per training row. */
  logp: ArrayLike<number>;
  /** [R]: the row's ratio (dense: the mean of its elements' ratios). */
  ratio: ArrayLike<number>;
  /** [R] or [R * P] (dense: per element). */
  logpOld: ArrayLike<number>;
  /** Per row: true where the row's behaviour version is the learner's current one (only those are checked). */
  onPolicy: readonly boolean[];
  tolerance: number;
}

/**
 * The training rows whose logp_old disagrees with the learner's own beyond the tolerance (a non-finite difference
 * disagrees), among the on-policy rows. Dense rows are checked on their mean and on their mean ratio: equal means
 * with per-element lies would leave the first unchanged, but not the second (Jensen: mean e^d > e^mean d).
 */
export function offPolicyRows(x: LogpCheckInputs): number[] {
  const R = x.logp.length;
  const per = x.logpOld.length / R;
  if (x.onPolicy.length !== R) throw new Error(`offPolicyRows: ${x.onPolicy.length} on-policy flags for ${R} rows`);
  const bad: number[] = [];
  for (let i = 0; i < R; i++) {
    if (!x.onPolicy[i]) continue;
    let old = 0;
    for (let k = i * per; k < (i + 1) * per; k++) old += x.logpOld[k]!;
    old /= per;
    const d = Math.abs(x.logp[i]! - old);
    const dr = Math.abs(x.ratio[i]! - 1);
    if (!(d <= x.tolerance && dr <= x.tolerance)) bad.push(i);
  }
  return bad;
}

/**
 * A behaviour log-density that gives a ratio of exactly 0 in float32 (exp(l - 1e30)) for any finite l: an excluded
 * row's terms are then -0 * 0 = 0 with a zero gradient even where the sent logp_old would have made the ratio
 * infinite (0 * inf is NaN).
 */
export const EXCLUDED_LOGP_OLD = 1e30;

/** The fields of a GRPO batch the exclusion rewrites: both families' (the flow family's logp_old is per row). */
export interface ExcludableFields {
  /** [N] per action. */
  advantages: Float32Array;
  /** Dense: [N * mapLen] per action. */
  advantageMap?: Float32Array;
  /** [R] or [R * P] per training row. */
  logpOld: Float32Array;
}

/**
 * Copies of `f` with the training rows `rows` excluded: their action's advantage (and advantage map) zero, their
 * logp_old EXCLUDED_LOGP_OLD. `actionOf` maps a training row to its action (the flow family trains several rows per
 * action; every row of an action with a forged step then carries no advantage). The identity member's term is left
 * alone: it reads neither the action nor logp_old.
 */
export function excludeRows(f: ExcludableFields, rows: readonly number[], R: number, actionOf: (row: number) => number = (r) => r): ExcludableFields {
  const advantages = f.advantages.slice();
  const advantageMap = f.advantageMap?.slice();
  const logpOld = f.logpOld.slice();
  const N = advantages.length;
  const per = logpOld.length / R;
  const mapLen = advantageMap ? advantageMap.length / N : 0;
  for (const row of rows) {
    const i = actionOf(row);
    advantages[i] = 0;
    advantageMap?.fill(0, i * mapLen, (i + 1) * mapLen);
    logpOld.fill(EXCLUDED_LOGP_OLD, row * per, (row + 1) * per);
  }
  return { advantages, ...(advantageMap ? { advantageMap } : {}), logpOld };
}

/**
 * A GRPO step's screen: given the first forward's logp and ratio per training row, the fields of a second forward
 * (rows excluded), or undefined to apply the first. PolicyTrainer and FlowTrainer grpoStep take one.
 */
export type GrpoScreen = (out: { logp: Float32Array; ratio: Float32Array }) => ExcludableFields | undefined;

/**
 * The learner's same-version screen over `batch`: rows whose behaviour version (`rowVersions`, per training row;
 * empty: none known, nothing checked) equals `version` are checked; the excluded rows are reported to `excluded`.
 */
export function sameVersionScreen(o: {
  batch: ExcludableFields; rowVersions: readonly number[]; version: number; tolerance: number;
  actionOf?: (row: number) => number; excluded: (rows: number[]) => void;
}): GrpoScreen {
  return (out) => {
    const R = out.logp.length;
    if (o.rowVersions.length !== R) return undefined;
    const rows = offPolicyRows({ logp: out.logp, ratio: out.ratio, logpOld: o.batch.logpOld, onPolicy: o.rowVersions.map((v) => v === o.version), tolerance: o.tolerance });
    if (rows.length === 0) return undefined;
    o.excluded(rows);
    return excludeRows(o.batch, rows, R, o.actionOf);
  };
}
