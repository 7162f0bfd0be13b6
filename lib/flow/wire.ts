// The flow family's tensors on the wire: a rollout action's trained steps (RolloutAction.flow_steps) and a
// GRPO batch's training rows (TrainBatch.flow_rows), encoded and decoded with the same validation as every
// tensor (shape, dtype, finite values, size limits). The states travel as float32 only: the learner must
// reproduce the rollout's log-probabilities within 1e-6 (docs/flow.md).
import { decodeTensor, encodeTensor, firstNonFinite, type FlowRows__Output, type FlowStep__Output, type FlowRows as FlowRowsMessage } from '../transport/index.ts';
import type { FlowRows, FlowStepRecord } from './family.ts';

const F32 = { expectDtype: 'float32' as const };

/** One action's trained steps; throws naming the field when one is malformed. */
export function decodeFlowSteps(steps: readonly FlowStep__Output[], field: string, size: number, dense: boolean, expected: number): FlowStepRecord[] {
  if (steps.length !== expected) throw new Error(`${field}: ${steps.length} trained steps, expected ${expected} (flow.sde.window.size)`);
  const shape = [3, size, size];
  let last = -1;
  return steps.map((s, k) => {
    const f = `${field}[${k}]`;
    if (!(s.index > last)) throw new Error(`${f}.index: ${s.index} does not follow step ${last}`);
    last = s.index;
    for (const [name, v] of [['t', s.t], ['t_next', s.t_next], ['a', s.a], ['logp', s.logp]] as const) {
      if (!Number.isFinite(v)) throw new Error(`${f}.${name} is ${v}`);
    }
    if (!(s.t > s.t_next && s.t <= 1 && s.t_next >= 0)) throw new Error(`${f}: t ${s.t} -> t_next ${s.t_next} is not a step from t to a smaller t_next in [0, 1]`);
    if (!(s.a > 0)) throw new Error(`${f}.a: a trained step has a > 0, got ${s.a}`);
    return {
      index: s.index, t: s.t, tNext: s.t_next, a: s.a, logp: s.logp,
      xBefore: decodeTensor(s.x_before, { field: `${f}.x_before`, expectShape: shape, ...F32 }).data,
      xAfter: decodeTensor(s.x_after, { field: `${f}.x_after`, expectShape: shape, ...F32 }).data,
      ...(dense ? { logpMap: decodeTensor(s.logp_map, { field: `${f}.logp_map`, expectShape: shape, ...F32 }).data } : {}),
    };
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

/** A TrainBatch's flow rows for `n` actions; throws naming the field (non-finite values are let through and reported by the caller). */
export function decodeFlowRows(m: FlowRows__Output | null | undefined, n: number, size: number, dense: boolean): { rows: FlowRows; nonFinite: string | undefined } {
  if (!m) throw new Error('train_batch.flow_rows: is missing; this run trains model.family flow');
  const R = m.action_index.length;
  if (R === 0) throw new Error('train_batch.flow_rows: no rows');
  if (m.step_index.length !== R) throw new Error(`train_batch.flow_rows.step_index: ${m.step_index.length} entries, action_index has ${R}`);
  const bad = m.action_index.findIndex((i) => !(i < n));
  if (bad >= 0) throw new Error(`train_batch.flow_rows.action_index[${bad}]: ${m.action_index[bad]} is not one of the batch's ${n} actions`);
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
