// `recovery-grpo demo --device ROLE=DEVICE`: each role's --device in the local run (docs/gpu.md); what is wrong or
// refused is an error naming the item, before anything starts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDevices } from '../../cli/commands/demo.ts';

test('demo --device: roles to devices; an unknown role or device, a malformed item or a refused use names itself', () => {
  assert.deepEqual(parseDevices([]), {});
  assert.deepEqual(parseDevices(['rollout=webgpu', 'reward=cuda', 'learner=cpu']), { 'rollout-worker': 'webgpu', 'reward-worker': 'cuda', learner: 'cpu' });
  assert.throws(() => parseDevices(['orchestrator=cpu']), /--device orchestrator=cpu: expected ROLE=DEVICE with ROLE one of rollout, reward, learner/);
  assert.throws(() => parseDevices(['rollout=tpu']), /--device rollout=tpu: expected .*DEVICE one of cpu, cuda, webgpu/);
  assert.throws(() => parseDevices(['rollout']), /--device rollout: expected ROLE=DEVICE/);
  assert.throws(() => parseDevices(['rollout=cpu=1']), /expected ROLE=DEVICE/);
  assert.throws(() => parseDevices(['learner=webgpu']), /--device learner=webgpu: the learner's GRPO graph differs/);
});
