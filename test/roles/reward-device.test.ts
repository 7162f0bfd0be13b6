// Which device a reward worker names (docs/gpu.md): its own --device, default cpu, from its first Hello, whatever the
// run config says (round 18: the device is a property of the worker's machine; reward.device is retired). Round 17
// had the run config's reward.device decide, known only at the Welcome, so the first Hello said `reward.device`. A
// --device this machine cannot give ends the worker before it dials (a SetupError), instead of after the Welcome.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startNatsServer } from '../helpers/nats.ts';
import { silentLogger } from '../../lib/worker/index.ts';
import { runRewardWorker } from '../../reward-worker/index.ts';
import { deviceOf } from '../../orchestrator/sessions.ts';
import { checkDevice } from '../../lib/graph/device-check.ts';
import { SetupError } from '../../lib/config/setup-error.ts';
import { startFakeOrchestrator, tinyConfig } from './helpers.ts';

test('a reward worker names its --device (default cpu) in its first Hello; a device this machine lacks ends it before it dials', async () => {
  const nats = await startNatsServer();
  const orch = await startFakeOrchestrator({ runId: 'rew-device', config: tinyConfig('rew-device') });
  try {
    const plain = await runRewardWorker({ orchestrator: orch.address, nats: nats.url, workerId: 'rew-plain', logger: silentLogger });
    await plain.ready;
    const s = await orch.session('rew-plain');
    assert.equal(s.hello.capabilities.device, 'cpu', 'the first Hello');
    assert.equal(deviceOf(s), 'cpu');
    await plain.stop({ graceMs: 1000 });

    const webgpuHere = await checkDevice('webgpu').then(() => true, () => false);
    const gpu = runRewardWorker({ orchestrator: orch.address, nats: nats.url, workerId: 'rew-gpu', logger: silentLogger, device: 'webgpu' });
    if (!webgpuHere) {
      await assert.rejects(gpu, (e: Error) => e instanceof SetupError && /^device webgpu: onnxruntime could not create the session/.test(e.message));
      return;
    }
    const handle = await gpu;
    const g = await orch.session('rew-gpu');
    assert.equal(g.hello.capabilities.device, 'webgpu:0');
    assert.equal(deviceOf(g), 'webgpu:0');
    await handle.stop({ graceMs: 1000 });
  } finally {
    await orch.close();
    await nats.stop();
  }
});
