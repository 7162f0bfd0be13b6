// The orchestrator's periodic evaluation runs on the orchestrator's own CPU: reward.device names where the reward
// workers score, and an orchestrator pod has no GPU. Before, it scored on reward.device, so a run with reward
// workers on a GPU (k8s/overlays/gpu: reward.device cuda) failed every periodic evaluation with the device's error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { natsForFile } from '../helpers/nats.ts';
import { CheckpointStore } from '../../lib/transport/index.ts';
import { createMetrics } from '../../lib/metrics/index.ts';
import { PeriodicEvaluator } from '../../lib/eval/periodic.ts';
import { initPolicyParams } from '../../lib/models/policy.ts';
import { policySpecOf } from '../../lib/models/bundle.ts';
import { parsed, publishParams, tinyConfig } from '../roles/helpers.ts';

const file = natsForFile('periodic-device');

for (const device of ['webgpu', 'cuda'] as const) {
  test(`periodic evaluation with reward.device ${device}: scored on the orchestrator's CPU`, async () => {
    const run = `periodic-${device}`;
    const config = parsed(tinyConfig(run, { reward: { device }, eval: { everyVersions: 1 } }));
    const store = await CheckpointStore.open(file.nc, { runId: run });
    await publishParams(store, config, run, 1, initPolicyParams(policySpecOf(config), 1));
    const logs: string[] = [];
    const ev = new PeriodicEvaluator({ config, store, metrics: createMetrics(run, 'orchestrator', { processMetrics: false }), log: (l) => logs.push(l) });
    try {
      const r = await ev.run();
      assert.ok(r, 'an evaluation of version 1');
      assert.ok(Number.isFinite(r.policy.reward) && Number.isFinite(r.identity.reward), `rewards ${r.policy.reward} ${r.identity.reward}`);
    } finally {
      await ev.close();
    }
  });
}
