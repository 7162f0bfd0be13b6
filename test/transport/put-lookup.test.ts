// CheckpointStore.put's lookup of what is stored under a version's name (round 28): made by a store's first put, by a
// put of a version it has begun before (a retry), and by the first put after the connection dropped; skipped for a
// version above every one the store has begun while the stream has been seen since the last drop. And prune's read of
// a record it deletes, skipped for versions the store committed since the last drop. Counted here by a core
// subscription to the JetStream API subject those reads request (a real nats-server sees and forwards them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { natsForFile } from '../helpers/nats.ts';
import { CheckpointStore, connectNats, sha256Digest } from '../../lib/transport/nats.ts';
import { onNatsReconnect } from '../../lib/transport/store-loss.ts';

const shared = natsForFile('put-lookup');

const ckpt = (n = 4096) => {
  const bytes = randomBytes(n);
  return { bytes, digest: sha256Digest(bytes) };
};

/** Counts the lookups of `run`'s object records (MSG.GET requests on its object stream) seen from now on. */
async function lookups(run: string): Promise<{ count(): Promise<number>; stop(): void }> {
  const sub = shared.nc.subscribe(`$JS.API.STREAM.MSG.GET.OBJ_checkpoints-${run}`);
  let n = 0;
  void (async () => {
    for await (const _ of sub) n++;
  })();
  await shared.nc.flush();
  return {
    count: async () => {
      await shared.nc.flush();
      return n;
    },
    stop: () => sub.unsubscribe(),
  };
}

test('put looks a version up on a store\'s first put and on a retry, not for each later version', async () => {
  const run = 'lookup-steady';
  const seen = await lookups(run);
  try {
    const store = await CheckpointStore.open(shared.nc, { runId: run });
    const cs = [1, 2, 3, 4].map(() => ckpt());
    for (let v = 1; v <= 4; v++) await store.put(v, cs[v - 1]!.bytes, cs[v - 1]!.digest);
    // before round 28: one per put (4)
    assert.equal(await seen.count(), 1);
    // a retry of a version it has begun: looked up, so the same bytes are only re-announced and others refused
    await store.put(4, cs[3]!.bytes, cs[3]!.digest);
    assert.equal(await seen.count(), 2);
    // other bytes for a version it has begun: looked up and refused (the refusal reads the announced version's record too)
    const other = ckpt();
    await assert.rejects(store.put(3, other.bytes, other.digest), /v3 already exists .* refusing to replace/);
    assert.ok((await seen.count()) > 2);
    for (let v = 1; v <= 4; v++) assert.ok(Buffer.from((await store.get(v, { expectDigest: cs[v - 1]!.digest })).bytes).equals(cs[v - 1]!.bytes));
    assert.deepEqual(await store.versions(), [1, 2, 3, 4]);
    // another store (another writer, or the learner restarted): its first put looks up and finds v4 taken
    const second = await CheckpointStore.open(shared.nc, { runId: run });
    await assert.rejects(second.put(4, other.bytes, other.digest), /v4 already exists .* refusing to replace/);
    // and then puts a new version without one
    const c5 = ckpt();
    const before = await seen.count();
    await second.put(5, c5.bytes, c5.digest);
    assert.equal(await seen.count(), before);
    assert.equal((await store.latest())?.digest, c5.digest);
  } finally {
    seen.stop();
  }
});

test('after the connection drops, the next put looks up again (a restarted nats-server may have lost the store)', async () => {
  const run = 'lookup-drop';
  const seen = await lookups(run);
  const nc = await connectNats({ url: shared.nats.url, name: 'put-lookup-writer' });
  try {
    const store = await CheckpointStore.open(nc, { runId: run });
    const c1 = ckpt();
    const c2 = ckpt();
    await store.put(1, c1.bytes, c1.digest);
    await store.put(2, c2.bytes, c2.digest);
    assert.equal(await seen.count(), 1);
    let reconnects = 0;
    const stop = onNatsReconnect(nc, () => reconnects++);
    await nc.reconnect();
    while (reconnects === 0) await new Promise((r) => setTimeout(r, 20));
    stop();
    const c3 = ckpt();
    const c4 = ckpt();
    await store.put(3, c3.bytes, c3.digest);
    assert.equal(await seen.count(), 2);
    await store.put(4, c4.bytes, c4.digest);
    assert.equal(await seen.count(), 2);
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

test('prune deletes a version this store committed without reading its record back, writing what nats.js\'s delete writes', async () => {
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
  const record = async (v: number) => {
    const m = await jsm.streams.getMessage(stream, { last_by_subj: recordSubject(v) });
    return { text: new TextDecoder().decode(m.data), seq: m.seq };
  };
  const before = new Map<number, { text: string; seq: number }>();
  for (const v of [1, 2, 3]) before.set(v, await record(v));
  // v1 deleted by another store (nothing committed there): nats.js's ObjectStore.delete, the reference
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
  // every deleted record: the stored one with revision (its sequence), deleted, size 0, chunks 0, digest '', in the
  // key order nats.js writes; v1's (written by nats.js) and v2's, v3's (written here) alike
  const keyOrders = new Set<string>();
  for (const v of [1, 2, 3]) {
    const was = JSON.parse(before.get(v)!.text) as Record<string, unknown>;
    const now = await record(v);
    const parsed = JSON.parse(now.text) as Record<string, unknown>;
    keyOrders.add(Object.keys(parsed).join(','));
    assert.equal(now.text, JSON.stringify({ ...was, revision: before.get(v)!.seq, deleted: true, size: 0, chunks: 0, digest: '' }), `v${v}`);
  }
  assert.equal(keyOrders.size, 1);
  assert.deepEqual(await store.versions(), [4, 5]);
  await assert.rejects(store.get(2), /pruned/);
  const si = await jsm.streams.info(stream, { subjects_filter: `$O.checkpoints-${run}.C.>` });
  assert.equal(Object.keys(si.state.subjects ?? {}).length, 2);
});
