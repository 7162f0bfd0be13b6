// Which device a reward worker names (docs/gpu.md): started with --device, its Hello says so; started without, the
// run config's reward.device decides, which reaches it only in the Welcome, so its first Hello says `reward.device`
// and the orchestrator names the config's (orchestrator/sessions.ts deviceOf). Before, the first Hello said `cpu`
// for a reward worker about to score on a GPU, with --device or without (seen on an H200, round 17).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startNatsServer } from '../helpers/nats.ts';
import { silentLogger } from '../../lib/worker/index.ts';
import { runRewardWorker } from '../../reward-worker/index.ts';
import { deviceOf } from '../../orchestrator/sessions.ts';
import { DEVICE_FROM_RUN_CONFIG } from '../../lib/graph/device.ts';
import { startFakeOrchestrator, tinyConfig } from './helpers.ts';

test('a reward worker without --device leaves its device to the run config; with --device it names it', async () => {
  const nats = await startNatsServer();
  const orch = await startFakeOrchestrator({ runId: 'rew-device', config: tinyConfig('rew-device') });
  try {
    const plain = await runRewardWorker({ orchestrator: orch.address, nats: nats.url, workerId: 'rew-plain', logger: silentLogger });
    await plain.ready;
    const s = await orch.session('rew-plain');
    assert.equal(s.hello.capabilities.device, DEVICE_FROM_RUN_CONFIG, 'the first Hello, before the Welcome brought reward.device');
    assert.equal(deviceOf(s, 'webgpu'), 'webgpu:0');
    assert.equal(deviceOf(s, 'cpu'), 'cpu');
    await plain.stop({ graceMs: 1000 });

    const gpu = await runRewardWorker({ orchestrator: orch.address, nats: nats.url, workerId: 'rew-gpu', logger: silentLogger, device: 'webgpu' });
    gpu.done.catch(() => {}); // without a GPU (CI) its scorer cannot start after the Welcome; the Hello came first
    const g = await orch.session('rew-gpu');
    assert.equal(g.hello.capabilities.device, 'webgpu:0');
    assert.equal(deviceOf(g, 'cpu'), 'webgpu:0', '--device wins over the run config');
    await gpu.stop({ graceMs: 1000 });
  } finally {
    await orch.close();
    await nats.stop();
  }
});
