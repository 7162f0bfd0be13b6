// The flow family's tensors on the wire: a rollout action's trained steps (RolloutAction.flow_steps) and a
// GRPO batch's training rows (TrainBatch.flow_rows), encoded and decoded with the same validation as every
// tensor (shape, dtype, finite values, size limits). The states travel as float32 only: the learner must
// reproduce the rollout's log-probabilities within 1e-6 (docs/flow.md).
import { decodeTensor, encodeTensor, firstNonFinite, type FlowRows__Output, type FlowStep__Output, type FlowRows as FlowRowsMessage } from '../transport/index.ts';
import type { FlowRows, FlowStepRecord } from './family.ts';
import { stepCoefficients, type FlowSamplerType, type PlannedStep } from './sampler.ts';
import { MIN_STEP_STD } from './graphs.ts';
import { checkLogp, checkLogpMap, logpRange, maxAbs } from '../grpo/logp-bounds.ts';

const F32 = { expectDtype: 'float32' as const };

/**
 * One action's trained steps; throws naming the field when one is malformed. `trained`: the trained steps of the
 * task's plan (flowRolloutPlan of its sample id, filtered to `trained`): each step's index, t, t_next and a must be
 * the plan's (compared as float32, as they travel), so a worker cannot choose which steps the learner trains, nor
 * the labels of its per-step metrics (docs/security.md). Each step's logp (and logp_map) must be a log-density the
 * step's Gaussian (its std, from `sampler` and the plan's t, t_next, a) can give (lib/grpo/logp-bounds.ts).
 */
export function decodeFlowSteps(steps: readonly FlowStep__Output[], field: string, size: number, dense: boolean, trained: readonly PlannedStep[], sampler: FlowSamplerType): FlowStepRecord[] {
  if (steps.length !== trained.length) throw new Error(`${field}: ${steps.length} trained steps, expected ${trained.length} (flow.sde.window.size)`);
  const shape = [3, size, size];
  const window = `the sample's window is steps ${trained[0]?.index}..${trained.at(-1)?.index}`;
  return steps.map((s, k) => {
    const f = `${field}[${k}]`;
    const p = trained[k]!;
    if (s.index !== p.index) throw new Error(`${f}.index: ${s.index} is not the plan's step ${p.index} (${window})`);
    for (const [name, v, want] of [['t', s.t, p.t], ['t_next', s.t_next, p.tNext], ['a', s.a, p.a]] as const) {
      if (Math.fround(v) !== Math.fround(want)) throw new Error(`${f}.${name}: ${v} is not the plan's ${Math.fround(want)} at step ${p.index}`);
    }
    if (!Number.isFinite(Math.fround(s.logp))) throw new Error(`${f}.logp is ${s.logp}, not a finite float32`);
    const xBefore = decodeTensor(s.x_before, { field: `${f}.x_before`, expectShape: shape, ...F32 }).data;
    const xAfter = decodeTensor(s.x_after, { field: `${f}.x_after`, expectShape: shape, ...F32 }).data;
    // the step's std as the graphs floor it (lib/flow/graphs.ts stepLogStd)
    const logStd = Math.log(Math.max(Math.fround(stepCoefficients(sampler, p.t, p.tNext, p.a).std), MIN_STEP_STD));
    const range = logpRange({ lo: logStd, hi: logStd }, maxAbs(xAfter));
    const what = `the step's std ${Math.exp(logStd).toPrecision(4)} (flow.sde, step ${p.index})`;
    checkLogp(s.logp, `${f}.logp`, range, what);
    const logpMap = dense ? decodeTensor(s.logp_map, { field: `${f}.logp_map`, expectShape: shape, ...F32 }).data : undefined;
    if (logpMap) checkLogpMap(logpMap, `${f}.logp_map`, range, what);
    return { index: s.index, t: s.t, tNext: s.t_next, a: s.a, logp: s.logp, xBefore, xAfter, ...(logpMap ? { logpMap } : {}) };
  });
}

const f32 = (data: Float32Array, shape: number[], field: string) => encodeTensor({ dtype: 'float32', shape, data }, { field });

export function encodeFlowRows(r: FlowRows, size: number): FlowRowsMessage {
  const R = r.rows;
  const img = [R, 3, size, size];
  return {
    action_index: Array.from(r.actionIndex), step_index: Array.from(r.stepIndex),
    t: f32(r.t, [R], 'train_batch.flow_rows.t'), t_next: f32(r.tNext, [R], 'train_batch.flow_rows.t_next'), a: f32(r.a, [R], 'train_batch.flow_rows.a'),
    x: f32(r.x, img, 'train_batch.flow_rows.x'), x_next: f32(r.xNext, img, 'train_batch.flow_rows.x_next'),
    logp_old: f32(r.logpOld, r.logpOld.length === R ? [R] : img, 'train_batch.flow_rows.logp_old'),
  };
}

/**
 * A TrainBatch's flow rows for `n` actions of a `steps`-step sampler (flow.steps); throws naming the field (non-finite
 * values are let through and reported by the caller). A step index must be one of the plan's [0, steps): the learner
 * sets one flow_step_* series per index it trains, so an unchecked index would let a peer add metric series.
 */
export function decodeFlowRows(m: FlowRows__Output | null | undefined, n: number, size: number, dense: boolean, steps: number): { rows: FlowRows; nonFinite: string | undefined } {
  if (!m) throw new Error('train_batch.flow_rows: is missing; this run trains model.family flow');
  const R = m.action_index.length;
  if (R === 0) throw new Error('train_batch.flow_rows: no rows');
  if (m.step_index.length !== R) throw new Error(`train_batch.flow_rows.step_index: ${m.step_index.length} entries, action_index has ${R}`);
  const bad = m.action_index.findIndex((i) => !(i < n));
  if (bad >= 0) throw new Error(`train_batch.flow_rows.action_index[${bad}]: ${m.action_index[bad]} is not one of the batch's ${n} actions`);
  const badStep = m.step_index.findIndex((k) => !(Number.isInteger(k) && k >= 0 && k < steps));
  if (badStep >= 0) throw new Error(`train_batch.flow_rows.step_index[${badStep}]: ${m.step_index[badStep]} is not a step of the ${steps}-step sampler (flow.steps; an index lies in [0, ${steps}))`);
  const img = [R, 3, size, size];
  const t = (name: 't' | 't_next' | 'a' | 'x' | 'x_next' | 'logp_old', shape: number[]) =>
    decodeTensor(m[name], { field: `train_batch.flow_rows.${name}`, expectShape: shape, allowNonFinite: true, ...F32 }).data;
  const rows: FlowRows = {
    rows: R, actionIndex: Int32Array.from(m.action_index), stepIndex: Int32Array.from(m.step_index),
    t: t('t', [R]), tNext: t('t_next', [R]), a: t('a', [R]), x: t('x', img), xNext: t('x_next', img), logpOld: t('logp_old', dense ? img : [R]),
  };
  let nonFinite: string | undefined;
  for (const [name, v] of Object.entries({ t: rows.t, t_next: rows.tNext, a: rows.a, x: rows.x, x_next: rows.xNext, logp_old: rows.logpOld })) {
    const i = firstNonFinite(v);
    if (i >= 0) { nonFinite = `train_batch.flow_rows.${name}[flat ${i}] = ${v[i]}`; break; }
  }
  return { rows, nonFinite };
}
