// refuseFixedLogStdChange through a learner's resume (review25d): a run whose std is fixed (model.learnLogStd false)
// resumed under another model.logStd would sample with the checkpoint's log_std while the orchestrator bounds every
// result's logp by the config's, refusing every honest rollout. The learner refuses such a resume at start (a
// SetupError, exit 78), naming both values; the same config resumes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';
import { silentLogger } from '../../lib/worker/index.ts';
import { runLearner } from '../../learner/index.ts';
import { sftBatch, startFakeOrchestrator, tinyConfig } from './helpers.ts';
import { startLearnerRig } from './learner-harness.ts';

const RUN = 'learn-logstd';
const first = tinyConfig(RUN, { sft: { steps: 1 }, model: { logStd: Math.log(0.05), learnLogStd: false } });
const changed = tinyConfig(RUN, { sft: { steps: 1 }, model: { logStd: Math.log(0.02), learnLogStd: false } });

let nats: TestNatsServer;
before(async () => {
  nats = await startNatsServer();
});
after(async () => {
  await nats?.stop();
});

async function resume(input: typeof first) {
  const orch = await startFakeOrchestrator({ runId: RUN, config: input });
  const learner = await runLearner({ orchestrator: orch.address, nats: nats.url, workerId: 'learner-1', logger: silentLogger, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
  const outcome = await Promise.race([learner.ready.then(() => 'ready' as const), learner.done.then(() => 'stopped' as const)]).catch((e: Error) => e);
  await learner.stop({ graceMs: 1000 });
  await learner.done.catch(() => undefined);
  await orch.close();
  return outcome;
}

test('a learner resuming a fixed-std run under another model.logStd stops with a SetupError naming both values; the same logStd resumes', { timeout: 120_000 }, async () => {
  const rig = await startLearnerRig({ runId: RUN, input: first, natsUrl: nats.url });
  assert.equal((await rig.train(sftBatch(RUN, 1))).train_result!.applied, true);
  await rig.close();

  const refused = await resume(changed);
  assert.ok(refused instanceof Error, `expected the resume under another logStd to fail, got ${String(refused)}`);
  assert.equal(refused.name, 'SetupError', refused.message);
  assert.match(refused.message, /checkpoint v1 holds log_std -2\.99573/);
  assert.match(refused.message, /model\.logStd is -3\.912/);

  assert.equal(await resume(first), 'ready', 'the same config resumes');
});
