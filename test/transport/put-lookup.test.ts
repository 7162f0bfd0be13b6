// CheckpointStore.put's lookup of what is stored under a version's name: every put makes one (round 27's put; round
// 28 measured skipping it for new versions and did not keep that: docs/performance-history/broadcast.md "Round 28:
// bcast28"). And prune's read of a record it deletes, skipped for versions the store committed since the last drop.
// Counted here by a core subscription to the JetStream API subject those reads request (a real nats-server sees and
// forwards them), on the writer's own connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { NatsConnection } from 'nats';
import { natsForFile } from '../helpers/nats.ts';
import { CheckpointStore, connectNats, sha256Digest } from '../../lib/transport/nats.ts';
import { onNatsReconnect } from '../../lib/transport/store-loss.ts';

const shared = natsForFile('put-lookup');

const ckpt = (n = 4096) => {
  const bytes = randomBytes(n);
  return { bytes, digest: sha256Digest(bytes) };
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Counts the lookups of `run`'s object records (MSG.GET requests on its object stream) seen from now on, on `nc`
 * (the writer's). count() waits until two readings 50 ms apart agree (at most 2 s): a request the server forwards is
 * counted when it arrives, which a flush alone does not wait for.
 */
async function lookups(run: string, nc: NatsConnection = shared.nc): Promise<{ count(): Promise<number>; stop(): void }> {
  const sub = nc.subscribe(`$JS.API.STREAM.MSG.GET.OBJ_checkpoints-${run}`);
  let n = 0;
  void (async () => {
    for await (const _ of sub) n++;
  })();
  await nc.flush();
  return {
    count: async () => {
      await nc.flush();
      let last = n;
      for (let i = 0; i < 40; i++) {
        await sleep(50);
        await nc.flush();
        if (n === last) return n;
        last = n;
      }
      return n;
    },
    stop: () => sub.unsubscribe(),
  };
}

test('every put looks its version up, one lookup a put, so a successor\'s announced version is never written over', async () => {
  const run = 'lookup-steady';
  const seen = await lookups(run);
  try {
    const store = await CheckpointStore.open(shared.nc, { runId: run });
    const cs = [1, 2, 3, 4].map(() => ckpt());
    for (let v = 1; v <= 4; v++) {
      await store.put(v, cs[v - 1]!.bytes, cs[v - 1]!.digest);
      assert.equal(await seen.count(), v);
    }
    // a retry of a version: looked up, so the same bytes are only re-announced and others refused
    await store.put(4, cs[3]!.bytes, cs[3]!.digest);
    assert.equal(await seen.count(), 5);
    // other bytes for a stored version: looked up and refused (the refusal reads the announced version's record too)
    const other = ckpt();
    await assert.rejects(store.put(3, other.bytes, other.digest), /v3 already exists .* refusing to replace/);
    assert.ok((await seen.count()) > 5);
    for (let v = 1; v <= 4; v++) assert.ok(Buffer.from((await store.get(v, { expectDigest: cs[v - 1]!.digest })).bytes).equals(cs[v - 1]!.bytes));
    assert.deepEqual(await store.versions(), [1, 2, 3, 4]);
    // another store (a successor learner): its put looks up and finds v4 taken, and its v5 is looked up too
    const second = await CheckpointStore.open(shared.nc, { runId: run });
    await assert.rejects(second.put(4, other.bytes, other.digest), /v4 already exists .* refusing to replace/);
    const c5 = ckpt();
    const before = await seen.count();
    await second.put(5, c5.bytes, c5.digest);
    assert.equal(await seen.count(), before + 1);
    assert.equal((await store.latest())?.digest, c5.digest);
    // the first store (a learner cut from the orchestrator, its NATS connection alive) puts its in-flight v5, above
    // every version it has put: looked up, the successor's announced v5 found, and refused (round 28's skip wrote over it)
    const stale = ckpt();
    await assert.rejects(store.put(5, stale.bytes, stale.digest), /v5 already exists .* refusing to replace/);
    assert.ok(Buffer.from((await store.get(5, { expectDigest: c5.digest })).bytes).equals(c5.bytes));
    assert.equal((await store.latest())?.digest, c5.digest);
  } finally {
    seen.stop();
  }
});

test('prune reads back the records of versions committed before a drop, not those committed since', async () => {
  const run = 'lookup-drop';
  const nc = await connectNats({ url: shared.nats.url, name: 'put-lookup-writer' });
  const seen = await lookups(run, nc);
  try {
    const store = await CheckpointStore.open(nc, { runId: run });
    const c1 = ckpt();
    const c2 = ckpt();
    await store.put(1, c1.bytes, c1.digest);
    await store.put(2, c2.bytes, c2.digest);
    assert.equal(await seen.count(), 2);
    let reconnects = 0;
    const stop = onNatsReconnect(nc, () => reconnects++);
    await nc.reconnect();
    while (reconnects === 0) await sleep(20);
    stop();
    const c3 = ckpt();
    const c4 = ckpt();
    await store.put(3, c3.bytes, c3.digest);
    assert.equal(await seen.count(), 3);
    await store.put(4, c4.bytes, c4.digest);
    assert.equal(await seen.count(), 4);
    assert.deepEqual(await store.versions(), [1, 2, 3, 4]);
    assert.equal((await store.latest())?.digest, c4.digest);
    // versions committed before the drop are deleted as nats.js does, reading each record first; v3, committed
    // since, without a read
    const reads = await seen.count();
    assert.deepEqual(await store.prune(2, { stored: [1, 2, 3, 4] }), [1, 2]);
    assert.equal(await seen.count(), reads + 2);
    assert.deepEqual(await store.prune(1, { stored: [3, 4] }), [3]);
    assert.equal(await seen.count(), reads + 2);
    assert.deepEqual(await store.versions(), [4]);
  } finally {
    seen.stop();
    await nc.close();
  }
});

test('prune deletes a version this store committed without reading its record back, leaving no record of it', async () => {
  const run = 'prune-known';
  const stream = `OBJ_checkpoints-${run}`;
  const jsm = await shared.nc.jetstreamManager();
  const store = await CheckpointStore.open(shared.nc, { runId: run });
  for (let v = 1; v <= 5; v++) {
    const c = ckpt(3000 + v);
    await store.put(v, c.bytes, c.digest);
  }
  const recordSubject = (v: number) => {
    const name = `v${String(v).padStart(10, '0')}`;
    return `$O.checkpoints-${run}.M.${Buffer.from(name).toString('base64url')}${'='.repeat((3 - (name.length % 3)) % 3)}`;
  };
  const recordCount = async (v: number) => (await jsm.streams.info(stream, { subjects_filter: recordSubject(v) })).state.subjects?.[recordSubject(v)] ?? 0;
  // v1 deleted by another store (nothing committed there): its record read first, the reference
  const other = await CheckpointStore.open(shared.nc, { runId: run });
  assert.deepEqual(await other.prune(1, { stored: [1, 5] }), [1]);
  const seen = await lookups(run);
  try {
    assert.deepEqual(await store.prune(2, { stored: [2, 3, 4, 5] }), [2, 3]);
    // before round 28: one record read per deleted version (nats.js's delete reads it first)
    assert.equal(await seen.count(), 0);
  } finally {
    seen.stop();
  }
  // no record at all is left of a deleted version, read back first (v1) or not (v2, v3): before round 35 each left a
  // "deleted" record, which kept every block of the store on disk (object-store-disk.test.ts)
  for (const v of [1, 2, 3]) assert.equal(await recordCount(v), 0, `v${v}`);
  for (const v of [4, 5]) assert.equal(await recordCount(v), 1, `v${v}`);
  assert.deepEqual(await store.versions(), [4, 5]);
  await assert.rejects(store.get(2), /pruned/);
  const si = await jsm.streams.info(stream, { subjects_filter: `$O.checkpoints-${run}.C.>` });
  assert.equal(Object.keys(si.state.subjects ?? {}).length, 2);
});

test('a store lost without a connection drop: once a put finds it gone, prune reads back what it committed before', async () => {
  const run = 'lookup-lost';
  const stream = `OBJ_checkpoints-${run}`;
  const jsm = await shared.nc.jetstreamManager();
  const store = await CheckpointStore.open(shared.nc, { runId: run });
  const c1 = ckpt();
  await store.put(1, c1.bytes, c1.digest);
  // the object stream deleted under the connection (`nats stream rm`, an R1 stream on a lost node): no drop
  await jsm.streams.delete(stream);
  const c2 = ckpt();
  await assert.rejects(store.put(2, c2.bytes, c2.digest));
  // another writer re-creates the store and puts v1 with other bytes (a successor's put-back of the KL reference)
  const other = await CheckpointStore.open(shared.nc, { runId: run });
  const c1b = ckpt(5000);
  await other.put(1, c1b.bytes, c1b.digest);
  await store.recreate();
  await store.put(2, c2.bytes, c2.digest);
  const seen = await lookups(run);
  try {
    // v1's record is the other writer's: read back and deleted as nats.js does (its chunks purged), not this store's
    // record of before the loss, which names chunks the lost stream held
    assert.deepEqual(await store.prune(1, { stored: [1, 2] }), [1]);
    assert.equal(await seen.count(), 1);
  } finally {
    seen.stop();
  }
  assert.deepEqual(await store.versions(), [2]);
  const si = await jsm.streams.info(stream, { subjects_filter: `$O.checkpoints-${run}.C.>` });
  assert.equal(Object.keys(si.state.subjects ?? {}).length, 1, "only v2's chunks are left");
});
