// A rollout worker of the flow family on --device webgpu is no longer refused (round 17: with the WebGPU provider
// preferring NCHW its rollout agrees with the CPU's, docs/gpu.md): it builds its flow graph on the provider. Where
// there is no GPU (CI), the worker then ends with the provider's error naming the device, not a refusal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startNatsServer } from '../helpers/nats.ts';
import { silentLogger } from '../../lib/worker/index.ts';
import { runRolloutWorker } from '../../rollout-worker/index.ts';
import { GraphSession } from '../../lib/graph/runtime.ts';
import { Graph } from '../../lib/graph/graph.ts';
import { identity } from '../../lib/graph/ops.ts';
import { serialize } from '../../lib/graph/onnx.ts';
import { startFakeOrchestrator, tinyConfig } from './helpers.ts';

async function hasWebgpu(): Promise<boolean> {
  const g = new Graph();
  g.output('y', identity(g.input('x', [1])));
  try {
    await (await GraphSession.create(serialize(g), { device: 'webgpu' })).release();
    return true;
  } catch {
    return false;
  }
}

test('a flow-family rollout worker on --device webgpu is not refused: it creates its graph on the provider', async (t) => {
  if (await hasWebgpu()) return t.skip('this machine has a WebGPU adapter: npm run gpu-check covers the flow rollout there');
  const nats = await startNatsServer();
  const orch = await startFakeOrchestrator({ runId: 'roll-webgpu', config: tinyConfig('roll-webgpu', { model: { family: 'flow' } }) });
  try {
    const w = await runRolloutWorker({ orchestrator: orch.address, nats: nats.url, workerId: 'roll-webgpu-1', logger: silentLogger, device: 'webgpu' });
    await assert.rejects(w.done, /device webgpu: onnxruntime could not create the session on its webgpu execution provider/);
  } finally {
    await orch.close();
    await nats.stop();
  }
});
