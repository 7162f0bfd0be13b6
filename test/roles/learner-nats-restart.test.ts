// The learner when nats-server is killed -9 and restarted (same port and store) while a checkpoint publish waits for
// the server: the publish fails at the drop (lib/transport/nats-disconnect.ts) and is tried again at once, its
// requests waiting for the reconnect, not after the learner's pause between publish attempts (`publishRetryMs`, set
// here far above the test's timeout: with the old code the publish waited out a request's timeout, then that pause).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';
import type { TrainBatch } from '../../lib/transport/index.ts';
import { sftBatch as sftTestBatch, tinyConfig } from './helpers.ts';
import { startLearnerRig, type LearnerRig } from './learner-harness.ts';

const RUN = 'learn-nats-restart';
const input = tinyConfig(RUN, {});
const sftBatch = (seq: number): TrainBatch => sftTestBatch(RUN, seq);

let nats: TestNatsServer;
let rig: LearnerRig;
before(async () => {
  nats = await startNatsServer();
  rig = await startLearnerRig({ runId: RUN, input, natsUrl: nats.url, learner: { publishRetryMs: 120_000 } });
});
after(async () => {
  await rig?.close();
  await nats?.stop();
});

test('a checkpoint publish caught by a nats-server kill -9 is retried once the connection is back, not after the retry pause', { timeout: 60_000 }, async () => {
  assert.equal((await rig.train(sftBatch(1))).train_result!.version, 1);
  // the server freezes: the learner trains batch 2 and its publish waits for an answer that never comes
  await nats.pause();
  const result = rig.train(sftBatch(2), 50_000);
  await sleep(1000);
  await nats.kill();
  await nats.restart();
  const r = (await result).train_result;
  assert.ok(r, 'batch 2 answered with a TrainResult');
  assert.equal(r.version, 2);
  const latest = await rig.store.latest();
  assert.deepEqual([latest?.version, latest?.digest], [2, r.checkpoint!.digest]);
});
