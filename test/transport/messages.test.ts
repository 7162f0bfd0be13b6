import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadProtocol } from '../../lib/transport/proto.ts';
import { decodeScoreTask, orchestratorMessageKind, resolveRolloutItems, validateHello, workerMessageKind } from '../../lib/transport/messages.ts';
import { encodeTensor } from '../../lib/transport/tensor.ts';
import type { OrchestratorMessage } from '../../lib/transport/proto.ts';

const O = loadProtocol().recovery.v1.OrchestratorMessage;
const wire = (m: OrchestratorMessage) => O.deserialize(O.serialize(m));
const img = (v: number, h = 2, w = 2) => encodeTensor({ dtype: 'float32', shape: [3, h, w], data: new Float32Array(3 * h * w).fill(v) });

test('rollout items share the image of their sample; a missing first image is an error naming the item', () => {
  const task = wire({
    rollout_task: {
      task_id: 't',
      items: [
        { sample_id: 'a', group_index: 0, noise_seed: 1, image: img(0.1) },
        { sample_id: 'b', group_index: 0, noise_seed: 2, image: img(0.2) },
        { sample_id: 'a', group_index: 1, noise_seed: 3 },
      ],
    },
  }).rollout_task!;
  const items = resolveRolloutItems(task);
  assert.equal(items[2]!.image, items[0]!.image);
  assert.equal(items[2]!.noise_seed, '3');
  assert.ok(Math.abs(items[1]!.image.data[0]! - 0.2) < 1e-7);
  const bad = wire({ rollout_task: { task_id: 't', items: [{ sample_id: 'a', group_index: 1, noise_seed: 3 }] } }).rollout_task!;
  assert.throws(() => resolveRolloutItems(bad), /rollout_task\.items\[0\]\.image: missing, and no earlier item of sample "a"/);
  const wrongShape = wire({ rollout_task: { task_id: 't', items: [{ sample_id: 'a', noise_seed: 3, image: encodeTensor({ dtype: 'uint8', shape: [1, 2, 2], data: new Float32Array(4) }) }] } }).rollout_task!;
  assert.throws(() => resolveRolloutItems(wrongShape), /rollout_task\.items\[0\]\.image: shape \[1,2,2\] does not match the expected \[3,\*,\*\]/);
});

test('score task references: one per candidate, or one [1,3,H,W] shared, which comes back as it is; mismatches are refused', () => {
  const cand = encodeTensor({ dtype: 'float32', shape: [4, 3, 2, 2], data: new Float32Array(48).fill(0.5) });
  const ref1 = encodeTensor({ dtype: 'uint8', shape: [1, 3, 2, 2], data: Float32Array.from({ length: 12 }, (_, i) => i) });
  const task = (references: ReturnType<typeof encodeTensor>) => wire({ score_task: { task_id: 's', candidates: cand, references } }).score_task!;
  const one = decodeScoreTask(task(ref1));
  assert.deepEqual(one.candidates.shape, [4, 3, 2, 2]);
  assert.deepEqual(one.references.shape, [1, 3, 2, 2]);
  assert.deepEqual([...one.references.data], Array.from({ length: 12 }, (_, i) => i));
  const ref4 = encodeTensor({ dtype: 'float32', shape: [4, 3, 2, 2], data: new Float32Array(48).fill(0.25) });
  assert.deepEqual(decodeScoreTask(task(ref4)).references.shape, [4, 3, 2, 2]);
  const ref3 = encodeTensor({ dtype: 'float32', shape: [3, 3, 2, 2], data: new Float32Array(36) });
  assert.throws(() => decodeScoreTask(task(ref3)), /score_task\.references: has 3 images, expected 1 or 4/);
  const refHW = encodeTensor({ dtype: 'float32', shape: [1, 3, 4, 4], data: new Float32Array(48) });
  assert.throws(() => decodeScoreTask(task(refHW)), /score_task\.references: shape \[1,3,4,4\] does not match the expected \[\*,3,2,2\]/);
  assert.throws(() => decodeScoreTask(wire({ score_task: { task_id: 's', references: ref1 } }).score_task!), /score_task\.candidates: tensor is missing/);
  const nan = encodeTensor({ dtype: 'float32', shape: [1, 3, 2, 2], data: new Float32Array(12).fill(NaN) }, { allowNonFinite: true });
  assert.throws(() => decodeScoreTask(task(nan)), /score_task\.references: non-finite value NaN at flat index 0/);
  assert.equal(decodeScoreTask(task(nan), { allowNonFinite: true }).references.data.length, 12);
});

test('envelope kinds and hello validation', () => {
  assert.equal(workerMessageKind({ heartbeat: { seq: 1 } }), 'heartbeat');
  assert.throws(() => workerMessageKind({ heartbeat: {}, task_error: {} }), /exactly one of .* got heartbeat, task_error/);
  assert.throws(() => orchestratorMessageKind({}), /got none/);
  const ok = validateHello({
    protocol_version: 1, role: 'LEARNER', worker_id: 'learner-0', software_version: '',
    capabilities: { device: 'cuda:0', max_batch: 64, max_in_flight: 1, tensor_dtypes: ['float16'], labels: { host: 'x' }, max_tasks_per_message: 0 },
    last_batch_seq: 12,
  });
  assert.equal(ok.last_batch_seq, 12);
  assert.throws(
    () => validateHello({ protocol_version: 1, role: 'LEARNER', worker_id: 'l', software_version: '', capabilities: { device: '', max_batch: 0, max_in_flight: 0, tensor_dtypes: ['int4' as never], labels: {}, max_tasks_per_message: 0 } }),
    /hello\.capabilities\.device: must name the device.*hello\.capabilities\.max_batch: must be at least 1.*hello\.capabilities\.tensor_dtypes\.0/,
  );
});
