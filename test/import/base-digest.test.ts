// A rollout worker whose imported base differs from the one the learner trained on refuses the run at start:
// the checkpoint names the learner's base digest, the worker computes its own from its model.network file.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { NatsConnection } from 'nats';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';
import { CheckpointStore, connectNats } from '../../lib/transport/index.ts';
import { configHash } from '../../lib/checkpoint/index.ts';
import { policySpecOf } from '../../lib/models/bundle.ts';
import { initPolicyParams } from '../../lib/models/policy.ts';
import { publishCheckpoint, silentLogger } from '../../lib/worker/index.ts';
import { SetupError } from '../../lib/config/setup-error.ts';
import { runRolloutWorker, type RolloutWorkerHandle } from '../../rollout-worker/index.ts';
import { runLearner } from '../../learner/index.ts';
import { parsed, startFakeOrchestrator, tinyConfig, type FakeOrchestrator } from '../roles/helpers.ts';
import { projectUnetOnnx } from './models.ts';

const RUN = 'base-test';
const dir = mkdtempSync(join(tmpdir(), 'base-digest-'));
const onnx = join(dir, 'unet.onnx');
writeFileSync(onnx, projectUnetOnnx(16).bytes);
const input = tinyConfig(RUN, { model: { network: { onnx } } });
const config = parsed(input);

let nats: TestNatsServer | undefined;
let nc: NatsConnection | undefined;
let orch: FakeOrchestrator | undefined;
let worker: RolloutWorkerHandle | undefined;
after(async () => {
  await worker?.stop({ graceMs: 500 }).catch(() => {});
  await orch?.close();
  await nc?.close();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('a rollout worker refuses a run whose checkpoints were trained on another base', { timeout: 120_000 }, async () => {
  nats = await startNatsServer();
  nc = await connectNats({ url: nats.url, name: 'base-test' });
  const store = await CheckpointStore.open(nc, { runId: RUN });
  const params = initPolicyParams(policySpecOf(config), 1);
  const other = 'f'.repeat(64);
  await publishCheckpoint(store, { meta: { runId: RUN, version: 0, step: 0, lastBatchId: null, configHash: configHash(config), extra: { base_digest: other } }, params });
  orch = await startFakeOrchestrator({ runId: RUN, config: input, policyVersion: 0 });
  worker = await runRolloutWorker({ orchestrator: orch.address, nats: nats.url, workerId: 'roll-base', logger: silentLogger });
  await assert.rejects(worker.done, (e: Error) => e instanceof SetupError && new RegExp(`was trained on base sha256 ${other}, but this role's model\\.network files give base sha256 [0-9a-f]{64}: every role must read the same base files; refusing the run`).test(e.message));
});

test('a learner refuses to resume from a checkpoint trained on another base: a SetupError (exit 78), not a restart', { timeout: 120_000 }, async () => {
  const runId = 'base-test-learner';
  const learnerInput = tinyConfig(runId, { model: { network: { onnx } } });
  nats ??= await startNatsServer();
  const lnc = await connectNats({ url: nats.url, name: 'base-test-learner' });
  const fake = await startFakeOrchestrator({ runId, config: learnerInput, policyVersion: 0 });
  try {
    const store = await CheckpointStore.open(lnc, { runId });
    const cfg = parsed(learnerInput);
    const other = 'e'.repeat(64);
    await publishCheckpoint(store, { meta: { runId, version: 0, step: 0, lastBatchId: null, configHash: configHash(cfg), extra: { base_digest: other } }, params: initPolicyParams(policySpecOf(cfg), 1) });
    const learner = await runLearner({ orchestrator: fake.address, nats: nats.url, workerId: 'learner-base', logger: silentLogger });
    await assert.rejects(learner.done, (e: Error) => e instanceof SetupError && /cannot resume from .*was trained on base sha256 e{64}, but this role's model\.network files give base sha256 [0-9a-f]{64}/.test(e.message));
  } finally {
    await fake.close();
    await lnc.close();
  }
});
