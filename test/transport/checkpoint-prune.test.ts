// CheckpointStore.prune(keepLast, { keep, stored }): the newest keepLast versions and every version in `keep` survive
// (a learner keeps its frozen KL reference this way); everything else older goes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { NatsConnection } from 'nats';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';
import { CheckpointStore, connectNats, sha256Digest } from '../../lib/transport/nats.ts';

let nats: TestNatsServer;
let nc: NatsConnection;

before(async () => {
  nats = await startNatsServer();
  nc = await connectNats({ url: nats.url, name: 'prune-test' });
});
after(async () => {
  await nc?.close();
  await nats?.stop();
});

async function putVersions(store: CheckpointStore, versions: number[]): Promise<Map<number, Uint8Array>> {
  const bytes = new Map<number, Uint8Array>();
  for (const v of versions) {
    const b = randomBytes(64 + v);
    bytes.set(v, b);
    await store.put(v, b, sha256Digest(b));
  }
  return bytes;
}

test('prune keeps the newest keepLast plus the keep-set, ignores absent keep versions, validates first', async () => {
  const store = await CheckpointStore.open(nc, { runId: 'prune-keep' });
  const bytes = await putVersions(store, [0, 1, 2, 3, 4, 5, 6]);

  // a bad keep entry is refused before anything is deleted
  await assert.rejects(store.prune(2, { keep: [1, -1] }), /prune: keep version must be a non-negative integer, got -1/);
  await assert.rejects(store.prune(2, { keep: [1.5] }), /got 1.5/);
  assert.deepEqual(await store.versions(), [0, 1, 2, 3, 4, 5, 6]);

  // keep 2 newest (5, 6) + the reference 1 + a version that does not exist (99): deletes 0, 2, 3, 4
  assert.deepEqual(await store.prune(2, { keep: [1, 99] }), [0, 2, 3, 4]);
  assert.deepEqual(await store.versions(), [1, 5, 6]);
  const ref = await store.get(1, { expectDigest: sha256Digest(bytes.get(1)!) });
  assert.ok(Buffer.from(ref.bytes).equals(bytes.get(1)!));
  await assert.rejects(store.get(3), /pruned/);

  // a kept version inside the newest keepLast is not counted twice: keepLast still means the newest N
  await putVersions(store, [7, 8]);
  assert.deepEqual(await store.prune(2, { keep: new Set([8, 1]) }), [5, 6]);
  assert.deepEqual(await store.versions(), [1, 7, 8]);

  // idempotent; without a keep-set the old behaviour is unchanged (the reference goes too)
  assert.deepEqual(await store.prune(2, { keep: [1] }), []);
  assert.deepEqual(await store.prune(2), [1]);
  assert.deepEqual(await store.versions(), [7, 8]);
  // announcements are untouched: latest() still names the newest
  assert.equal((await store.latest())!.version, 8);
});

test('prune with the caller\'s record of stored versions deletes from that record without listing the bucket', async () => {
  const store = await CheckpointStore.open(nc, { runId: 'prune-stored' });
  await putVersions(store, [0, 1, 2, 3, 4, 5, 6]);
  // a bad record entry is refused before anything is deleted
  await assert.rejects(store.prune(2, { stored: [5, 6, -2] }), /prune: stored version must be a non-negative integer, got -2/);
  assert.deepEqual(await store.versions(), [0, 1, 2, 3, 4, 5, 6]);
  // the record (3 and 4 left out, 6 twice, unordered) decides: the newest two of it (5, 6) and the reference 1 stay;
  // 3 and 4, which a listing would have deleted, are not the record's and stay too
  assert.deepEqual(await store.prune(2, { keep: [1], stored: [6, 0, 5, 2, 1, 6] }), [0, 2]);
  assert.deepEqual(await store.versions(), [1, 3, 4, 5, 6]);
  // a recorded version that is no longer stored (deleted by someone else) is deleted again without an error
  assert.deepEqual(await store.prune(1, { stored: [0, 6] }), [0]);
  assert.deepEqual(await store.versions(), [1, 3, 4, 5, 6]);
});
