// Limits a worker checks against the run at its first Welcome, so that a run it cannot serve stops at once, naming
// the flag, instead of failing later or never moving (round 23's review of the merged round, review23e):
// - the learner's --max-batch against the run's largest batch: before, a GRPO batch over it ended the run only after
//   the whole warm start;
// - a worker's gRPC receive limit (--max-message-bytes) against the run's orchestrator.maxMessageBytes: before, a batch
//   over the learner's limit closed its stream, the reconnect got it again, and the run waited for ever.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';
import { silentLogger } from '../../lib/worker/index.ts';
import { SetupError } from '../../lib/config/setup-error.ts';
import { runLearner } from '../../learner/index.ts';
import { runRolloutWorker } from '../../rollout-worker/index.ts';
import { startFakeOrchestrator, tinyConfig } from './helpers.ts';

let nats: TestNatsServer | undefined;
after(async () => {
  await nats?.stop();
});

test("a learner whose --max-batch is below the run's largest batch stops at the start, naming the flag", { timeout: 30_000 }, async () => {
  nats ??= await startNatsServer();
  const runId = 'max-batch';
  const fake = await startFakeOrchestrator({ runId, config: tinyConfig(runId, { sft: { steps: 1, batchSize: 2 }, grpo: { steps: 1, samplesPerBatch: 2, groupSize: 4 } }) });
  try {
    const learner = await runLearner({ orchestrator: fake.address, nats: nats.url, workerId: 'learner-mb', logger: silentLogger, maxBatch: 4 });
    await assert.rejects(learner.done, (e: Error) => e instanceof SetupError
      && /run max-batch: its batches hold up to 8 samples \(sft\.batchSize 2, grpo\.samplesPerBatch 2 x grpo\.groupSize 4\), more than this learner's max_batch 4: start it with --max-batch 8/.test(e.message));
  } finally {
    await fake.close();
  }
});

test("a worker whose receive limit is below the run's orchestrator.maxMessageBytes stops at the Welcome, naming the flag", { timeout: 30_000 }, async () => {
  nats ??= await startNatsServer();
  const runId = 'msg-limit';
  const fake = await startFakeOrchestrator({ runId, config: tinyConfig(runId, { orchestrator: { maxMessageBytes: 4 * 1024 * 1024 } }) });
  try {
    const learner = await runLearner({ orchestrator: fake.address, nats: nats.url, workerId: 'learner-ml', logger: silentLogger, maxMessageBytes: 65536 });
    // a SetupError (exit 78): a supervisor stops the run rather than restarting a worker no restart cures
    await assert.rejects(learner.done, (e: Error) => e instanceof SetupError
      && /the run's orchestrator\.maxMessageBytes is 4194304 bytes, but this worker receives messages of at most 65536: start it with --max-message-bytes 4194304/.test(e.message));
  } finally {
    await fake.close();
  }
});

test('a rollout worker refuses a versionWaitMs that is not a whole number of ms (NaN waited for ever), before it dials', async () => {
  for (const versionWaitMs of [Number.NaN, -1, 1.5]) {
    await assert.rejects(runRolloutWorker({ orchestrator: '127.0.0.1:1', nats: 'nats://127.0.0.1:1', logger: silentLogger, versionWaitMs }),
      (e: unknown) => e instanceof SetupError && /^rollout worker options\.versionWaitMs: must be an integer >= 0/.test(e.message), String(versionWaitMs));
  }
});
