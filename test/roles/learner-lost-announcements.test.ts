// A learner that finds no announcement but a store holding versions past 0 refuses to start the run over (round 22's
// review: a credential that could flood the announcement stream evicted every announcement, and the restarted
// learner published a fresh v0 over the announced one). Version 0 alone, stored but never announced (a learner killed
// between the two), still starts: the seed gives the same bytes, announced again.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { NatsConnection } from 'nats';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';
import { CheckpointStore, connectNats } from '../../lib/transport/index.ts';
import { configHash } from '../../lib/checkpoint/index.ts';
import { policySpecOf } from '../../lib/models/bundle.ts';
import { initPolicyParams } from '../../lib/models/policy.ts';
import { publishCheckpoint, silentLogger } from '../../lib/worker/index.ts';
import { SetupError } from '../../lib/config/setup-error.ts';
import { runLearner } from '../../learner/index.ts';
import { parsed, startFakeOrchestrator, tinyConfig } from './helpers.ts';

let nats: TestNatsServer | undefined;
let nc: NatsConnection | undefined;
after(async () => {
  await nc?.close();
  await nats?.stop();
});

/** A run `runId` on the test's server: its config, its store, and checkpoints v0..`upTo` stored and announced. */
async function runWithVersions(runId: string, upTo: number) {
  nats ??= await startNatsServer();
  nc ??= await connectNats({ url: nats.url, name: 'lost-announcements' });
  const input = tinyConfig(runId);
  const cfg = parsed(input);
  const store = await CheckpointStore.open(nc, { runId });
  const params = initPolicyParams(policySpecOf(cfg), 1);
  const digests: string[] = [];
  for (let v = 0; v <= upTo; v++) {
    const a = await publishCheckpoint(store, { meta: { runId, version: v, step: v, lastBatchId: v ? `b-${v}` : null, configHash: configHash(cfg), extra: { last_batch_seq: String(v) } }, params });
    digests.push(a.digest);
  }
  return { input, cfg, store, digests };
}

async function purgeAnnouncements(store: CheckpointStore): Promise<void> {
  const jsm = await nc!.jetstreamManager();
  await jsm.streams.purge(store.stream);
  assert.equal(await store.latest(), null);
}

test('no announcement but versions up to v2 in the store: the learner refuses to start over (SetupError), v0 untouched', { timeout: 40_000 }, async () => {
  const runId = 'lost-ann';
  const { input, store, digests } = await runWithVersions(runId, 2);
  await purgeAnnouncements(store);
  const fake = await startFakeOrchestrator({ runId, config: input, policyVersion: 2 });
  try {
    const learner = await runLearner({ orchestrator: fake.address, nats: nats!.url, workerId: 'learner-lost', logger: silentLogger });
    await assert.rejects(learner.done, (e: Error) => e instanceof SetupError
      && /run lost-ann: the checkpoint store holds 2 version\(s\) up to v2 but no announcement of any: the announcements were lost; refusing to start the run over from version 0/.test(e.message));
    // nothing was replaced or announced
    assert.equal(await store.latest(), null);
    assert.deepEqual(await store.versions(), [0, 1, 2]);
    await store.get(0, { expectDigest: digests[0]! }); // v0's bytes are still the announced ones (throws otherwise)
  } finally {
    await fake.close();
  }
});

test('v0 stored but never announced (killed between the two): the learner starts and announces v0', { timeout: 40_000 }, async () => {
  nats ??= await startNatsServer();
  nc ??= await connectNats({ url: nats.url, name: 'lost-announcements' });
  const runId = 'lost-ann-v0';
  const input = tinyConfig(runId);
  const cfg = parsed(input);
  const store = await CheckpointStore.open(nc, { runId });
  // stored, then the writer "dies" before announcing: put awaits beforeAnnounce between the two
  const ckpt = { meta: { runId, version: 0, step: 0, lastBatchId: null, configHash: configHash(cfg), extra: {} }, params: initPolicyParams(policySpecOf(cfg), 1) };
  const killed = Promise.reject(new Error('killed'));
  killed.catch(() => {}); // awaited by put, not before
  await assert.rejects(publishCheckpoint(store, ckpt, {}, undefined, { beforeAnnounce: killed }), /killed/);
  assert.deepEqual(await store.versions(), [0]);
  assert.equal(await store.latest(), null);
  const fake = await startFakeOrchestrator({ runId, config: input, policyVersion: 0 });
  const learner = await runLearner({ orchestrator: fake.address, nats: nats!.url, workerId: 'learner-v0', logger: silentLogger });
  try {
    await learner.ready;
    const now = await store.latest();
    assert.equal(now?.version, 0);
    assert.equal(now?.digest, learner.state()?.latest?.digest, "the learner's v0 announced");
  } finally {
    await learner.stop();
    await fake.close();
  }
});

test('announcements there but none readable as backed (a failed read, junk on the subject): the learner retries, neither starting over nor stopping', { timeout: 90_000 }, async () => {
  const runId = 'lost-ann-junk';
  const { input, store } = await runWithVersions(runId, 1);
  await purgeAnnouncements(store);
  nc!.publish(store.subject, new TextEncoder().encode('not an announcement'));
  await nc!.flush();
  assert.equal(await store.announcementCount(), 1);
  const lines: string[] = [];
  const logger = { info() {}, warn: (m: string) => lines.push(m), error: (m: string) => lines.push(m) };
  const fake = await startFakeOrchestrator({ runId, config: input, policyVersion: 1 });
  const learner = await runLearner({ orchestrator: fake.address, nats: nats!.url, workerId: 'learner-junk', logger, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
  let ended = false;
  learner.done.then(() => (ended = true), () => (ended = true));
  try {
    for (const t0 = Date.now(); Date.now() - t0 < 30_000 && !lines.some((l) => /holds 1 announcement\(s\) but none read as backed by its checkpoint .*not starting over, trying again/.test(l)); ) await new Promise((r) => setTimeout(r, 100));
    assert.ok(lines.some((l) => /not starting over, trying again/.test(l)), lines.join('\n'));
    assert.equal(ended, false, 'the learner stopped instead of trying again');
    assert.deepEqual(await store.versions(), [0, 1]);
    assert.equal(await store.announcementCount(), 1, 'nothing announced');
  } finally {
    await learner.stop();
    await fake.close();
  }
});
