// A rollout worker asked to run the flow family on --device webgpu ends with an error naming the device and why
// (lib/graph/device.ts refusedOn: onnxruntime-node's WebGPU Conv is wrong for the flow network's 6-channel stem,
// docs/gpu.md), before it loads a graph: the refusal needs no GPU, so it runs here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startNatsServer } from '../helpers/nats.ts';
import { silentLogger } from '../../lib/worker/index.ts';
import { runRolloutWorker } from '../../rollout-worker/index.ts';
import { startFakeOrchestrator, tinyConfig } from './helpers.ts';

test('a flow-family rollout worker on --device webgpu is refused at the Welcome, naming the device and the reason', async () => {
  const nats = await startNatsServer();
  const orch = await startFakeOrchestrator({ runId: 'roll-webgpu', config: tinyConfig('roll-webgpu', { model: { family: 'flow' } }) });
  try {
    const w = await runRolloutWorker({ orchestrator: orch.address, nats: nats.url, workerId: 'roll-webgpu-1', logger: silentLogger, device: 'webgpu' });
    await assert.rejects(w.done, /--device webgpu: the flow family's velocity network gives wrong values on onnxruntime-node's WebGPU provider .*docs\/gpu\.md/);
  } finally {
    await orch.close();
    await nats.stop();
  }
});
