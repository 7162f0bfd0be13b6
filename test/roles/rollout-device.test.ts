// A rollout worker of the flow family on --device webgpu is no longer refused (round 17: with the WebGPU provider
// preferring NCHW its rollout agrees with the CPU's, docs/gpu.md): it goes to the provider. Where there is no GPU
// (CI), the worker then ends at start (lib/graph/device-check.ts) with the provider's error naming the device, a
// SetupError (exit CONFIG_EXIT_CODE: not restarted), not a refusal (`worker options.device: webgpu: ...`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startNatsServer } from '../helpers/nats.ts';
import { silentLogger } from '../../lib/worker/index.ts';
import { runRolloutWorker } from '../../rollout-worker/index.ts';
import { checkDevice } from '../../lib/graph/device-check.ts';
import { SetupError } from '../../lib/config/setup-error.ts';
import { startFakeOrchestrator, tinyConfig } from './helpers.ts';

test('a flow-family rollout worker on --device webgpu is not refused: it goes to the provider', async (t) => {
  if (await checkDevice('webgpu').then(() => true, () => false)) return t.skip('this machine has a WebGPU adapter: npm run gpu-check covers the flow rollout there');
  const nats = await startNatsServer();
  const orch = await startFakeOrchestrator({ runId: 'roll-webgpu', config: tinyConfig('roll-webgpu', { model: { family: 'flow' } }) });
  try {
    await assert.rejects(runRolloutWorker({ orchestrator: orch.address, nats: nats.url, workerId: 'roll-webgpu-1', logger: silentLogger, device: 'webgpu' }),
      (e: Error) => e instanceof SetupError && /^device webgpu: onnxruntime could not create the session on its webgpu execution provider/.test(e.message));
  } finally {
    await orch.close();
    await nats.stop();
  }
});
