// The flow family's tensors on the wire: trained steps and training rows round-trip through the protobuf
// encoding bit for bit, and malformed ones (wrong shape, float16 states, non-finite values, a wrong step
// count, a row pointing past the batch) are refused naming the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeFlowRows, decodeFlowSteps, encodeFlowRows } from '../../lib/flow/wire.ts';
import { flowRowsOf, type FlowStepRecord } from '../../lib/flow/family.ts';
import type { PlannedStep } from '../../lib/flow/sampler.ts';
import { encodeTensor, type FlowStep__Output } from '../../lib/transport/index.ts';
import { BatchError, decodeTrainBatch } from '../../learner/batch.ts';
import type { TrainBatch__Output } from '../../lib/transport/index.ts';

const S = 4;
const pix = 3 * S * S;
const img = (seed: number) => Float32Array.from({ length: pix }, (_, i) => Math.sin(seed * 31 + i) * 1.3);

function record(index: number, seed: number): FlowStepRecord {
  return { index, t: 0.9 - 0.2 * index, tNext: 0.7 - 0.2 * index, a: 0.7, xBefore: img(seed), xAfter: img(seed + 1), logp: -1.25 - seed, logpMap: img(seed + 2).map((v) => v - 3) };
}

/** The plan the records follow (the orchestrator's: trainedFlowSteps of the task's sample). */
const planOf = (recs: readonly FlowStepRecord[]): PlannedStep[] => recs.map((r) => ({ index: r.index, t: r.t, tNext: r.tNext, a: r.a, trained: true }));

function onWire(r: FlowStepRecord, dtype: 'float32' | 'float16' = 'float32'): FlowStep__Output {
  const t = (d: Float32Array) => encodeTensor({ dtype, shape: [3, S, S], data: d }, { allowNonFinite: true }) as never;
  return { index: r.index, t: r.t, t_next: r.tNext, a: r.a, x_before: t(r.xBefore), x_after: t(r.xAfter), logp: r.logp, logp_map: t(r.logpMap!) };
}

test('trained steps round-trip bit for bit; malformed ones are refused naming the field', () => {
  const recs = [record(1, 1), record(2, 5)];
  const plan = planOf(recs);
  const back = decodeFlowSteps(recs.map((r) => onWire(r)), 'items[0].flow_steps', S, true, plan, 'sde');
  back.forEach((b, k) => {
    assert.deepEqual(b.xBefore, recs[k]!.xBefore);
    assert.deepEqual(b.xAfter, recs[k]!.xAfter);
    assert.deepEqual(b.logpMap, recs[k]!.logpMap);
    assert.equal(b.logp, recs[k]!.logp);
  });
  assert.throws(() => decodeFlowSteps(recs.map((r) => onWire(r)), 'f', S, true, planOf([...recs, record(3, 9)]), 'sde'), /f: 2 trained steps, expected 3/);
  assert.throws(() => decodeFlowSteps(recs.map((r) => onWire(r, 'float16')), 'f', S, false, plan, 'sde'), /f\[0\]\.x_before/);
  assert.throws(() => decodeFlowSteps([onWire({ ...recs[0]!, logp: NaN }), onWire(recs[1]!)], 'f', S, false, plan, 'sde'), /f\[0\]\.logp is NaN/);
  const bad = { ...recs[1]!, xAfter: img(3).fill(Infinity, 4, 5) };
  assert.throws(() => decodeFlowSteps([onWire(recs[0]!), onWire(bad)], 'f', S, false, plan, 'sde'), /f\[1\]\.x_after/);
  assert.throws(() => decodeFlowSteps([onWire(recs[1]!), onWire(recs[0]!)], 'f', S, false, plan, 'sde'), /f\[0\]\.index: 2 is not the plan's step 1/);
  assert.throws(() => decodeFlowSteps([onWire({ ...recs[0]!, tNext: 0.95 }), onWire(recs[1]!)], 'f', S, false, plan, 'sde'), /f\[0\]\.t_next: 0\.95 is not the plan's/);
  assert.throws(() => decodeFlowSteps(recs.map((r) => onWire(r)), 'f', S + 1, false, plan, 'sde'), /f\[0\]\.x_before/);
});

test('training rows round-trip through a TrainBatch to the learner; a row past the batch or a Gaussian-style batch is refused', () => {
  const rows = flowRowsOf([[record(1, 1)], [record(1, 2)], [record(1, 3)]], pix, false);
  const n = 3;
  const images = new Float32Array(n * pix).fill(0.5);
  const base = {
    batch_id: 'r-b1', batch_seq: 1, kind: 'GRPO', lease_ms: 0,
    images: encodeTensor({ dtype: 'float32', shape: [n, 3, S, S], data: images }),
    actions: encodeTensor({ dtype: 'float32', shape: [n, 3, S, S], data: images }),
    advantages: encodeTensor({ dtype: 'float32', shape: [n], data: Float32Array.of(1, 0, -1) }),
    behaviour_versions: [0, 0, 0], sample_ids: ['a', 'a', 'a'], group_indices: [0, 1, 2],
    targets: null, logp_old: null, advantage_map: null,
  };
  const batch = { ...base, flow_rows: encodeFlowRows(rows, S) } as unknown as TrainBatch__Output;
  const d = decodeTrainBatch(batch, { height: S, width: S, family: 'flow', flowSteps: 4 });
  assert.equal(d.kind, 'grpo');
  if (d.kind !== 'grpo') return;
  assert.equal(d.nonFinite, undefined);
  assert.deepEqual(d.flow!.x, rows.x);
  assert.deepEqual(d.flow!.logpOld, rows.logpOld);
  assert.deepEqual([...d.flow!.actionIndex], [0, 1, 2]);
  const past = { ...rows, actionIndex: Int32Array.of(0, 1, 3) };
  assert.throws(() => decodeTrainBatch({ ...base, flow_rows: encodeFlowRows(past, S) } as unknown as TrainBatch__Output, { height: S, width: S, family: 'flow', flowSteps: 4 }), /action_index\[2\]/);
  assert.throws(() => decodeTrainBatch({ ...base, flow_rows: null } as unknown as TrainBatch__Output, { height: S, width: S, family: 'flow', flowSteps: 4 }), /flow_rows: is missing/);
  assert.throws(() => decodeTrainBatch(batch, { height: S, width: S, family: 'gaussian' }), /model\.family gaussian/);
  assert.throws(() => encodeFlowRows({ ...rows, xNext: rows.xNext.slice().fill(NaN, 7, 8) }, S), /train_batch\.flow_rows\.x_next/);
  assert.equal(decodeFlowRows(encodeFlowRows(rows, S) as never, n, S, false, 4).rows.rows, 3);
});

test('the learner refuses a flow row whose step index is not a step of the flow.steps plan, naming the field and row', () => {
  const rows = flowRowsOf([[record(1, 1)], [record(3, 2)]], pix, false);
  const n = 2;
  const images = encodeTensor({ dtype: 'float32', shape: [n, 3, S, S], data: new Float32Array(n * pix).fill(0.5) });
  const batch = (stepIndex: number[]) => ({
    batch_id: 'r-b1', batch_seq: 1, kind: 'GRPO', lease_ms: 0, images, actions: images,
    advantages: encodeTensor({ dtype: 'float32', shape: [n], data: Float32Array.of(1, -1) }),
    behaviour_versions: [0, 0], sample_ids: ['a', 'a'], group_indices: [0, 1], targets: null, logp_old: null, advantage_map: null,
    flow_rows: { ...encodeFlowRows(rows, S), step_index: stepIndex },
  }) as unknown as TrainBatch__Output;
  const shape = { height: S, width: S, family: 'flow', flowSteps: 4 } as const;
  assert.deepEqual([...(decodeTrainBatch(batch([1, 3]), shape) as { flow: { stepIndex: Int32Array } }).flow.stepIndex], [1, 3]);
  for (const [k, why] of [[4, 'flow.steps 4'], [1_000_001, 'the review\'s probe'], [2 ** 31, 'Int32Array made it negative']] as const) {
    assert.throws(() => decodeTrainBatch(batch([1, k]), shape), (e: unknown) => {
      assert.ok(e instanceof BatchError, why);
      assert.equal(e.code, 'bad_input');
      assert.match(e.message, new RegExp(`^train_batch\\.flow_rows\\.step_index\\[1\\]: ${k} is not a step of the 4-step sampler`));
      return true;
    }, why);
  }
});
