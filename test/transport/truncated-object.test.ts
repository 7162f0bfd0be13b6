// A stored checkpoint whose object holds fewer chunks than its info announces (a chunk deleted or lost in the
// stream), read on a live connection, with a real nats-server: the read is an integrity error that names the object
// and the version (a rollout worker refuses the version, a learner refuses to resume), not the plain "unavailable"
// error of a read that a dropped connection cut short (retried: test/transport/nats-disconnect.test.ts). Before,
// both were the plain error: a learner resuming from such an object restarted for ever.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { NatsConnection } from 'nats';
import { CheckpointIntegrityError, CheckpointStore, connectNats, sha256Digest } from '../../lib/transport/index.ts';
import { parseConfig } from '../../lib/config/index.ts';
import { withTimeout } from '../../lib/async/with-timeout.ts';
import { encodeCheckpoint } from '../../lib/checkpoint/index.ts';
import { configHash } from '../../lib/checkpoint/digest.ts';
import { initPolicyParams } from '../../lib/models/policy.ts';
import { policySpecOf } from '../../lib/models/bundle.ts';
import { runLearner } from '../../learner/index.ts';
import { fetchCheckpoint, silentLogger } from '../../lib/worker/index.ts';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';
import { startFakeOrchestrator, tinyConfig } from '../roles/helpers.ts';

let nats: TestNatsServer;
let nc: NatsConnection;
before(async () => {
  nats = await startNatsServer({ maxPayload: 5 * 1024 }); // chunks of 1 KiB: a tiny run's checkpoint (~2.8 KB) has 3
  nc = await connectNats({ url: nats.url, name: 'truncated-test' });
});
after(async () => {
  await nc.close();
  await nats.stop();
});

/** Deletes a middle chunk of checkpoint `version`'s object from its stream, leaving its info as it was. */
async function deleteMiddleChunk(store: CheckpointStore, version: number): Promise<number> {
  const jsm = await nc.jetstreamManager();
  const os = await nc.jetstream().views.os(store.bucket);
  const info = (await os.info(`v${String(version).padStart(10, '0')}`))!;
  assert.ok(info.chunks >= 3, `the object must have a middle chunk: ${info.chunks} chunks`);
  const subject = `$O.${store.bucket}.C.${info.nuid}`;
  const last = await jsm.streams.getMessage(`OBJ_${store.bucket}`, { last_by_subj: subject });
  const middle = await jsm.streams.getMessage(`OBJ_${store.bucket}`, { seq: last.seq - 1 });
  assert.equal(middle.subject, subject, 'the chunks are consecutive in the stream');
  await jsm.streams.deleteMessage(`OBJ_${store.bucket}`, middle.seq);
  return info.chunks;
}

test('a checkpoint object missing a chunk, read on a live connection: a CheckpointIntegrityError naming the object and version', { timeout: 30_000 }, async () => {
  const store = await CheckpointStore.open(nc, { runId: 'trunc-get', push: false });
  const bytes = randomBytes(100 * 1024);
  const digest = sha256Digest(bytes);
  await store.put(3, bytes, digest);
  const chunks = await deleteMiddleChunk(store, 3);
  await assert.rejects(store.get(3, { expectDigest: digest }), (e: unknown) => {
    assert.ok(e instanceof CheckpointIntegrityError, `an integrity error: ${String(e)}`);
    assert.match(e.message, new RegExp(`checkpoint v3: checkpoints-trunc-get/v0000000003 is truncated: its chunks \\S+ hold ${chunks - 1} of the ${chunks} chunks its info announces`));
    return true;
  });
});

test('a learner whose latest checkpoint is missing a chunk refuses to resume (it does not restart for ever)', { timeout: 60_000 }, async () => {
  const runId = 'trunc-learner';
  const cfg = parseConfig(tinyConfig(runId));
  const store = await CheckpointStore.open(nc, { runId });
  const { bytes, digest } = encodeCheckpoint({ meta: { runId, version: 0, step: 0, lastBatchId: null, configHash: configHash(cfg) }, params: initPolicyParams(policySpecOf(cfg), 7) });
  await store.put(0, bytes, `sha256:${digest}`);
  await deleteMiddleChunk(store, 0);
  // a rollout worker's fetch (its follower counts an integrity error as reason "integrity" and refuses the version)
  const params = initPolicyParams(policySpecOf(cfg), 7);
  const shapes = new Map([...params].map(([k, t]) => [k, t.shape] as const));
  await assert.rejects(fetchCheckpoint(store, { version: 0, digest: `sha256:${digest}` }, { runId, shapes, views: true }), (e: unknown) => e instanceof CheckpointIntegrityError && /checkpoint v0: checkpoints-trunc-learner\/v0000000000 is truncated/.test(e.message));
  const fake = await startFakeOrchestrator({ runId, config: tinyConfig(runId) });
  let l: Awaited<ReturnType<typeof runLearner>> | undefined;
  try {
    l = await runLearner({ orchestrator: fake.address, nats: nats.url, workerId: 'learner-trunc', logger: silentLogger });
    // bounded: a learner that retries for ever (the old code) fails the test instead of holding the file's process
    const ended = await withTimeout(l.done.then(() => new Error('the learner ended cleanly'), (e: unknown) => e), 30_000);
    assert.ok(ended instanceof Error, 'the learner did not end within 30 s (it keeps retrying)');
    assert.match(ended.message, /cannot resume from the latest checkpoint \(v0\): checkpoint v0: checkpoints-trunc-learner\/v0000000000 is truncated.*Refusing to start/);
  } finally {
    await l?.stop({ graceMs: 0 });
    await fake.close();
  }
});
