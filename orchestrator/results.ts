// Results from workers, decoded and checked before the coordinator accepts them: a malformed result throws
// (naming the field) and its task is retried elsewhere. The worker's own text (its task id) is quoted and cut short in
// the error (lib/log/quote.ts): the coordinator logs it, for whoever sent it.
import type { RunConfig } from '../lib/config/index.ts';
import type { Components } from '../lib/grpo/reward-expression.ts';
import { ssimMapSize } from '../lib/models/ssim.ts';
import { flowRolloutPlan, type FlowStepRecord } from '../lib/flow/family.ts';
import type { FlowSamplerType, PlannedStep } from '../lib/flow/sampler.ts';
import { checkLogp, checkLogpMap, logpRange, policyLogStdRange, within, type LogStdRange } from '../lib/grpo/logp-bounds.ts';
import { decodeFlowSteps } from '../lib/flow/wire.ts';
import { quoteForLog } from '../lib/log/quote.ts';
import { checkFinite, decodeTensor, type RolloutResult__Output, type ScoreResult__Output } from '../lib/transport/index.ts';

export interface DecodedRollout {
  /** Per action [3,H,W], in group-index order. */
  actions: Float32Array[];
  logps: number[];
  /** Dense: per action, the per-element behaviour log-density [3,H,W]. */
  logpMaps?: Float32Array[];
  /** Flow family: per action, its trained steps. */
  flowSteps?: FlowStepRecord[][];
  version: number;
}

/**
 * What a rollout's log-densities are checked against: the Gaussian policy's log-std range (policyLogStdRange), or for
 * the flow family the trained steps of the task's sample (trainedFlowSteps), which every action's flow_steps must
 * equal in index, t, t_next and a, and its sampler (each step's std follows from them).
 */
export type RolloutPolicy = { logStd: LogStdRange } | { flowTrained: readonly PlannedStep[]; sampler: FlowSamplerType };

/** The RolloutPolicy of a task for `sampleId` in this run. */
export function rolloutPolicy(config: RunConfig, sampleId: string): RolloutPolicy {
  if (config.model.family === 'flow') return { flowTrained: trainedFlowSteps(config, sampleId), sampler: config.flow.sde.type };
  return { logStd: policyLogStdRange(config.model) };
}

/**
 * Throws naming the field when `r` is malformed; a logp (or logp_map element) no Gaussian of `policy` can give is
 * refused too (lib/grpo/logp-bounds.ts): a made-up one could overflow the batch's float32 logp_old.
 */
export function decodeRolloutResult(r: RolloutResult__Output, groupSize: number, size: number, dense: boolean, policy: RolloutPolicy): DecodedRollout {
  if (r.items.length !== groupSize) throw new Error(`rollout_result ${quoteForLog(r.task_id)}: ${r.items.length} actions, expected ${groupSize}`);
  const shape = [3, size, size];
  // Each tensor is read once for its checks (issue #15, round 28): an action's finiteness (decodeTensor's check, same
  // error) with its largest |value|, a logp_map's finiteness with its range, in one pass each; a value that fails the
  // pass runs the checks as they were, one after the other, so the error is the one they give.
  const largest: number[] = [];
  const actions = r.items.map((it, i) => {
    const field = `rollout_result.items[${i}].action`;
    const t = decodeTensor(it.action, { field, expectShape: shape, allowNonFinite: true });
    largest.push(finiteMaxAbs(t.data, field));
    if (it.group_index !== i) throw new Error(`rollout_result.items[${i}].group_index is ${it.group_index}`);
    return t.data;
  });
  if ('flowTrained' in policy) {
    const flowSteps = r.items.map((it, i) => decodeFlowSteps(it.flow_steps, `rollout_result.items[${i}].flow_steps`, size, dense, policy.flowTrained, policy.sampler));
    return { actions, logps: r.items.map(() => 0), flowSteps, version: r.policy_version };
  }
  const what = policy.logStd.lo === policy.logStd.hi ? `log-std ${policy.logStd.lo} (model.logStd)` : 'a learned log-std (model.learnLogStd)';
  const ranges = largest.map((m) => logpRange(policy.logStd, m));
  r.items.forEach((it, i) => checkLogp(it.logp, `rollout_result.items[${i}].logp`, ranges[i]!, what));
  const logpMaps = dense
    ? r.items.map((it, i) => {
      const field = `rollout_result.items[${i}].logp_map`;
      const map = decodeTensor(it.logp_map, { field, expectShape: shape, allowNonFinite: true }).data;
      const range = ranges[i]!;
      if (!within(map, range.min, range.max)) {
        checkFinite(map, field); // decodeTensor's error first, as before
        checkLogpMap(map, field, range, what);
      }
      return map;
    })
    : undefined;
  return { actions, logps: r.items.map((it) => it.logp), ...(logpMaps ? { logpMaps } : {}), version: r.policy_version };
}

/**
 * maxAbs(x) (lib/grpo/logp-bounds.ts) of a tensor decoded without its finiteness check, which this pass makes: an
 * infinity or NaN throws decodeTensor's TensorError (the first one, naming `field`). Read as bits, four values a step:
 * a float32's |value| orders as its bits without the sign (as non-negative int32s), and an infinity or NaN is exactly
 * one whose such bits are 0x7f800000 or more; the largest is the same number maxAbs finds (~2.4x faster).
 */
export function finiteMaxAbs(x: Float32Array, field: string): number {
  const w = new Int32Array(x.buffer, x.byteOffset, x.length); // a Float32Array is always 4-byte aligned
  const n = w.length;
  const n4 = n & ~3;
  let m0 = 0;
  let m1 = 0;
  let m2 = 0;
  let m3 = 0;
  let i = 0;
  for (; i < n4; i += 4) {
    const a = w[i]! & 0x7fffffff;
    const b = w[i + 1]! & 0x7fffffff;
    const c = w[i + 2]! & 0x7fffffff;
    const d = w[i + 3]! & 0x7fffffff;
    if (a > m0) m0 = a;
    if (b > m1) m1 = b;
    if (c > m2) m2 = c;
    if (d > m3) m3 = d;
  }
  for (; i < n; i++) {
    const a = w[i]! & 0x7fffffff;
    if (a > m0) m0 = a;
  }
  const m = Math.max(m0, m1, m2, m3);
  if (m >= 0x7f800000) checkFinite(x, field);
  BITS[0] = m;
  return VALUE[0]!;
}

const VALUE = new Float32Array(1);
const BITS = new Int32Array(VALUE.buffer);

/** The steps a flow rollout of `sampleId` trains: its plan's SDE window (lib/flow/family.ts flowRolloutPlan). */
export function trainedFlowSteps(config: RunConfig, sampleId: string): PlannedStep[] {
  return flowRolloutPlan(config, sampleId).filter((s) => s.trained);
}

export interface DecodedScore {
  components: Components[];
  /** Dense: per action, the SSIM map [3,h,w] (float32 on the wire). */
  ssimMaps?: Float32Array[];
}

/**
 * How far past +-1 a cosine may lie and still be a score: float32 rounding. A candidate equal or very close to its
 * reference computes a cosine up to 1 + 3.6e-7 (round 22's review; SSIM: SSIM_ROUNDING below); a retry gives the same
 * values, so refusing them dropped the group. Kept as computed, not clamped: the single-process loop uses them so.
 */
export const SCORE_ROUNDING = 1e-5;

/**
 * The same for SSIM and its map: the float32 graph takes each window's variances as E[x^2 + y^2] - (mx^2 + my^2),
 * which cancels in bright regions, so a window can come out up to about 6e-4 past 1 and a near-perfect candidate's
 * SSIM 1 + 1.2e-5 (round 24's review). The single-process loop keeps such scores, so the orchestrator must too.
 */
export const SSIM_ROUNDING = 1e-3;

export function decodeScoreResult(r: ScoreResult__Output, groupSize: number, size: number, dense: boolean): DecodedScore {
  if (r.components.length !== groupSize) throw new Error(`score_result ${quoteForLog(r.task_id)}: ${r.components.length} components, expected ${groupSize}`);
  const components = r.components.map((c, i) => {
    if (!Number.isFinite(c.ssim) || !Number.isFinite(c.clip_cos)) throw new Error(`score_result.components[${i}] is not finite (ssim ${c.ssim}, clip_cos ${c.clip_cos})`);
    // SSIM and a cosine lie in [-1, 1] (up to float32 rounding): anything else is a made-up score, refused before it
    // can pick a winner.
    if (Math.abs(c.ssim) > 1 + SSIM_ROUNDING) throw new Error(`score_result.components[${i}].ssim is ${c.ssim}, outside [-1, 1]`);
    if (Math.abs(c.clip_cos) > 1 + SCORE_ROUNDING) throw new Error(`score_result.components[${i}].clip_cos is ${c.clip_cos}, outside [-1, 1]`);
    return { ssim: c.ssim, clip_cos: c.clip_cos };
  });
  if (!dense) return { components };
  const h = ssimMapSize(size);
  // finiteness (decodeTensor's check, its error first) and the range in one pass, as the rollout's maps
  const maps = decodeTensor(r.ssim_map, { field: 'score_result.ssim_map', expectShape: [groupSize, 3, h, h], allowNonFinite: true }).data;
  const limit = 1 + SSIM_ROUNDING;
  if (!within(maps, -limit, limit)) {
    checkFinite(maps, 'score_result.ssim_map');
    for (let i = 0; i < maps.length; i++) {
      if (Math.abs(maps[i]!) > limit) throw new Error(`score_result.ssim_map[${i}] is ${maps[i]}, outside [-1, 1]`);
    }
  }
  const L = 3 * h * h;
  return { components, ssimMaps: Array.from({ length: groupSize }, (_, i) => maps.subarray(i * L, (i + 1) * L)) };
}
