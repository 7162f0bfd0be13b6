// A flow rollout result's trained steps are the task's plan: the orchestrator recomputes the sample's SDE window
// (run seed, sample id) and refuses steps whose index, t, t_next or a differ from it, naming the field. Before
// (round 23's review), only increasing indices were checked: index 10^6 reached the learner, which set a
// flow_step_* metric series for it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../lib/config/index.ts';
import { flowRolloutPlan } from '../../lib/flow/family.ts';
import type { PlannedStep } from '../../lib/flow/sampler.ts';
import { encodeTensor, type FlowStep__Output, type RolloutResult__Output } from '../../lib/transport/index.ts';
import { decodeRolloutResult, trainedFlowSteps } from '../../orchestrator/results.ts';

const S = 16;
const G = 2;
const config = parseConfig({
  run: { id: 'flowres', seed: 7 }, data: { size: S, source: { kind: 'procedural', count: 4 } },
  model: { family: 'flow', width: 4, depth: 1 },
  flow: { steps: 8, shift: 1, sde: { window: { size: 2, start: 'random' } } },
  grpo: { groupSize: G, samplesPerBatch: 1, steps: 1 },
});
const tensor = () => encodeTensor({ dtype: 'float32', shape: [3, S, S], data: new Float32Array(3 * S * S).fill(0.25) }) as never;

/** A step as it arrives: t, t_next and a are float32 on the wire. */
function onWire(p: PlannedStep, patch: Partial<FlowStep__Output> = {}): FlowStep__Output {
  return { index: p.index, t: Math.fround(p.t), t_next: Math.fround(p.tNext), a: Math.fround(p.a), x_before: tensor(), x_after: tensor(), logp: -1, logp_map: null, ...patch };
}

function result(steps: (g: number) => FlowStep__Output[]): RolloutResult__Output {
  return {
    task_id: 'flowres-r0-x', attempt: 1, policy_version: 0, compute_ms: 0,
    items: Array.from({ length: G }, (_, g) => ({ sample_id: 's', group_index: g, action: tensor(), mean: null, logp: 0, logp_map: null, flow_steps: steps(g) })),
  };
}

test('a flow result whose steps are the sample plan is accepted; an index of 10^6 or outside the window is refused naming the field', () => {
  const sample = 'procedural:1';
  const trained = trainedFlowSteps(config, sample);
  assert.equal(trained.length, 2);
  const good = decodeRolloutResult(result(() => trained.map((p) => onWire(p))), G, S, false, { flowTrained: trained, sampler: 'sde' });
  assert.deepEqual(good.flowSteps!.map((s) => s.map((r) => r.index)), [trained.map((p) => p.index), trained.map((p) => p.index)]);

  const field = /rollout_result\.items\[1\]\.flow_steps\[1\]\.index: 1000000 is not the plan's step/;
  const huge = result((g) => trained.map((p, k) => onWire(p, g === 1 && k === 1 ? { index: 1_000_000 } : {})));
  assert.throws(() => decodeRolloutResult(huge, G, S, false, { flowTrained: trained, sampler: 'sde' }), field);

  // a step of the sampler, increasing, but not in this sample's window
  const outside = flowRolloutPlan(config, sample).find((p) => !p.trained && p.index > trained[0]!.index)!;
  const moved = result(() => [onWire(trained[0]!), onWire(outside)]);
  assert.throws(() => decodeRolloutResult(moved, G, S, false, { flowTrained: trained, sampler: 'sde' }), new RegExp(`items\\[0\\]\\.flow_steps\\[1\\]\\.index: ${outside.index} is not the plan's step ${trained[1]!.index}`));
  // the right index with another step's times or noise level
  assert.throws(() => decodeRolloutResult(result(() => [onWire(trained[0]!), onWire({ ...outside, index: trained[1]!.index })]), G, S, false, { flowTrained: trained, sampler: 'sde' }), /items\[0\]\.flow_steps\[1\]\.t: /);
  assert.throws(() => decodeRolloutResult(result(() => [onWire(trained[0]!, { t_next: Math.fround(trained[0]!.tNext + 0.01) }), onWire(trained[1]!)]), G, S, false, { flowTrained: trained, sampler: 'sde' }), /items\[0\]\.flow_steps\[0\]\.t_next: /);
  assert.throws(() => decodeRolloutResult(result(() => [onWire(trained[0]!, { a: 0.5 }), onWire(trained[1]!)]), G, S, false, { flowTrained: trained, sampler: 'sde' }), /items\[0\]\.flow_steps\[0\]\.a: 0\.5 is not the plan's/);
});

test('the trained window is a function of the sample id: another sample with another window is refused', () => {
  // samples whose windows differ (flow.sde.window.start random: drawn from run seed and sample id)
  const ids = Array.from({ length: 32 }, (_, i) => `procedural:${i}`);
  const first = trainedFlowSteps(config, ids[0]!);
  const other = ids.find((id) => trainedFlowSteps(config, id)[0]!.index !== first[0]!.index);
  assert.ok(other, 'some sample draws another window');
  const theirs = trainedFlowSteps(config, other);
  assert.throws(() => decodeRolloutResult(result(() => theirs.map((p) => onWire(p))), G, S, false, { flowTrained: first, sampler: 'sde' }), /items\[0\]\.flow_steps\[0\]\.index: /);
});

test('with flow.sde.trainLastStep the plan trains the last step (t_next = 0): its steps are accepted, the untrained last step refused without the option', () => {
  const last = parseConfig({
    run: { id: 'flowres', seed: 7 }, data: { size: S, source: { kind: 'procedural', count: 4 } },
    model: { family: 'flow', width: 4, depth: 1 },
    flow: { steps: 8, shift: 1, sde: { window: { size: 2, start: 6 }, trainLastStep: true } },
    grpo: { groupSize: G, samplesPerBatch: 1, steps: 1 },
  });
  const trained = trainedFlowSteps(last, 'procedural:1');
  assert.deepEqual(trained.map((p) => [p.index, p.tNext]), [[6, trained[0]!.tNext], [7, 0]]);
  const ok = decodeRolloutResult(result(() => trained.map((p) => onWire(p))), G, S, false, { flowTrained: trained, sampler: 'sde' });
  assert.deepEqual(ok.flowSteps!.map((s) => s.map((r) => r.index)), [[6, 7], [6, 7]]);
  // the same steps against a run without the option (its window is random, in the first half): refused
  assert.throws(() => decodeRolloutResult(result(() => trained.map((p) => onWire(p))), G, S, false, { flowTrained: trainedFlowSteps(config, 'procedural:1'), sampler: 'sde' }), /items\[0\]\.flow_steps\[0\]\.index: 6 is not the plan's step/);
});
