// review32 F6: a learner drops, at its start, the kept exclusion reports (lib/grpo/exclusion-reports.ts) of batches
// after the one it resumes from: such a report was kept by a learner killed before publishing that batch's version,
// and the batch trained again under that seq may be another with no excluded row (no report to replace it). The
// learner over real gRPC (a fake orchestrator) and a real nats-server (test/roles/learner-harness.ts). Since round 33
// the seqs of reports dropped to their bound too.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';
import { RunStateStore } from '../../lib/transport/nats.ts';
import { LEARNER_RECORD_KEY } from '../../lib/grpo/exclusion-reports.ts';
import { sftBatch, tinyConfig } from '../roles/helpers.ts';
import { startLearnerRig, type LearnerRig } from '../roles/learner-harness.ts';

const RUN = 'reports-resume';
let nats: TestNatsServer;
let rig: LearnerRig;

before(async () => {
  nats = await startNatsServer();
  rig = await startLearnerRig({ runId: RUN, input: tinyConfig(RUN, { sft: { steps: 4 } }), natsUrl: nats.url });
});
after(async () => {
  await rig?.close();
  await nats?.stop();
});

test('at start the learner drops the kept reports of batches after the one it resumes from, and keeps the rest of its record', async () => {
  for (const seq of [1, 2]) assert.equal((await rig.train(sftBatch(RUN, seq))).train_result?.applied, true);
  const record = await RunStateStore.open(rig.nc, { runId: RUN, key: LEARNER_RECORD_KEY, schema: z.record(z.string(), z.unknown()) });
  // as a learner killed after keeping the report of batch 3 and before publishing v3 left it (batch 3 trained by
  // no checkpoint); the skip fields name an older checkpoint (they count only while it is the latest)
  const kept = [{ seq: 1, results: { forger: 'x' } }, { seq: 2, results: { forger: 'xp' } }, { seq: 3, results: { forger: 'x' } }];
  await record.modify(() => ({ version: 0, digest: 'd0', last_batch_seq: 0, exclusion_reports: kept }));
  await rig.restartLearner();
  assert.equal(rig.learner.state()!.lastBatchSeq, 2);
  assert.deepEqual((await record.get())?.value, { version: 0, digest: 'd0', last_batch_seq: 0, exclusion_reports: kept.slice(0, 2) });
  // nothing to drop: no write
  const revision = (await record.get())!.revision;
  await rig.restartLearner();
  assert.equal((await record.get())!.revision, revision);
  // round 33: the seqs of reports dropped to the bound go the same way (one after batch 2 would have an orchestrator
  // say that batch's report was lost); the one up to it stays
  const withDropped = [{ seq: 1, dropped: true }, { seq: 3, dropped: true }, { seq: 4, results: { forger: 'x' } }];
  await record.modify(() => ({ version: 0, digest: 'd0', last_batch_seq: 0, exclusion_reports: withDropped }));
  await rig.restartLearner();
  assert.deepEqual((await record.get())?.value, { version: 0, digest: 'd0', last_batch_seq: 0, exclusion_reports: [{ seq: 1, dropped: true }] });
});
