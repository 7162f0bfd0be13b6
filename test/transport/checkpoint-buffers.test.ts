// A follower's pushed checkpoints in reused buffers (lib/transport/checkpoint-buffers.ts, checkpoint-push.ts,
// CheckpointStore.get's release/reuse, the policy follower's use()): a buffer is reused only once every holder has
// released it, and then every view of the released checkpoint reads as empty; a checkpoint still held is never
// overwritten by the ones that follow.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { NatsConnection } from 'nats';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';
import { CheckpointStore, connectNats, sha256Digest, type Announcement } from '../../lib/transport/nats.ts';
import { CheckpointBuffers, capacityFor } from '../../lib/transport/checkpoint-buffers.ts';
import type { CheckpointPushReceiver } from '../../lib/transport/checkpoint-push.ts';
import { encodeCheckpoint, type TensorMap } from '../../lib/checkpoint/index.ts';
import { fetchCheckpoint } from '../../lib/worker/checkpoints.ts';
import type { RoleContext } from '../../lib/worker/index.ts';
import { PolicyFollower } from '../../rollout-worker/policy-follower.ts';

let nats: TestNatsServer;
let learnerNc: NatsConnection;
let followerNc: NatsConnection;

before(async () => {
  nats = await startNatsServer();
  learnerNc = await connectNats({ url: nats.url, name: 'pool-learner' });
  followerNc = await connectNats({ url: nats.url, name: 'pool-follower' });
});
after(async () => {
  await learnerNc?.close();
  await followerNc?.close();
  await nats?.stop();
});

async function nextAnnouncement(it: AsyncIterator<Announcement>): Promise<Announcement> {
  const r = await it.next();
  assert.ok(!r.done, 'the watch ended');
  return r.value;
}

/** The follower store's pool (a private field: what the test checks is whether buffers went back to it). */
const poolOf = (store: CheckpointStore) => (store['pushes'] as CheckpointPushReceiver | undefined)!.buffers;

test('CheckpointBuffers: a buffer is reused only after its last holder releases it, and its views are then empty', () => {
  const pool = new CheckpointBuffers();
  const ab = pool.alloc(1000);
  assert.equal(ab.byteLength, capacityFor(1000));
  const view = new Float32Array(ab, 8, 4);
  view.set([1, 2, 3, 4]);
  pool.acquire(ab); // a consumer's hold beside the receiver's
  pool.release(ab);
  assert.deepEqual([...view], [1, 2, 3, 4], 'one holder left: untouched');
  assert.equal(pool.freeCount, 0);
  // while held, a new allocation gets another buffer
  const other = pool.alloc(1000);
  assert.notEqual(other, ab);
  pool.release(ab);
  assert.equal(view.length, 0, 'released: the view is detached');
  assert.equal(ab.byteLength, 0);
  assert.equal(pool.freeCount, 1);
  assert.throws(() => pool.acquire(ab), /after its last release/);
  const again = pool.alloc(900);
  assert.equal(again.byteLength, capacityFor(1000), 'the released memory, under a new ArrayBuffer');
  assert.equal(pool.freeCount, 0);
  // a much larger checkpoint does not take a small buffer, nor a small one a huge buffer
  pool.release(again);
  assert.equal(pool.alloc(10 * capacityFor(1000)).byteLength, capacityFor(10 * capacityFor(1000)));
  assert.equal(pool.freeCount, 1);
  // buffers not from the pool are left alone
  const foreign = new ArrayBuffer(16);
  pool.release(foreign);
  assert.equal(foreign.byteLength, 16);
  pool.reserve(5000, 2);
  assert.equal(pool.freeCount, 2, 'reserve keeps only buffers that fit, and makes the rest');
});

for (const [label, size] of [['in one message', 300 * 1024 + 5], ['in several messages (1 MiB max_payload)', 2.5 * 1024 * 1024 + 17]] as const) {
  test(`pushed checkpoints ${label}: held ones are never overwritten, released ones are detached and their buffer reused`, async () => {
    const runId = `pool-${size}`;
    const learner = await CheckpointStore.open(learnerNc, { runId });
    const follower = await CheckpointStore.open(followerNc, { runId });
    const watch = await follower.watch();
    const it = watch[Symbol.asyncIterator]();
    const versions = [1, 2, 3, 4].map(() => {
      const bytes = randomBytes(size);
      return { bytes, digest: sha256Digest(bytes) };
    });
    try {
      await learner.put(1, versions[0]!.bytes, versions[0]!.digest);
      const a1 = await nextAnnouncement(it);
      const g1 = await follower.get(1, { expectDigest: a1.digest, reuse: true });
      assert.ok(Buffer.from(g1.bytes).equals(versions[0]!.bytes));
      assert.equal(poolOf(follower).freeCount, 1, 'the join reserved a buffer for the next push');

      // v2 and v3 arrive while v1 is still held (not released): v1's bytes stay exactly as received
      await learner.put(2, versions[1]!.bytes, versions[1]!.digest);
      const g2 = await follower.get(2, { expectDigest: (await nextAnnouncement(it)).digest, reuse: true });
      await learner.put(3, versions[2]!.bytes, versions[2]!.digest);
      const a3 = await nextAnnouncement(it);
      assert.ok(Buffer.from(g1.bytes).equals(versions[0]!.bytes), 'a held checkpoint was overwritten');
      assert.ok(Buffer.from(g2.bytes).equals(versions[1]!.bytes), 'a held checkpoint was overwritten');

      // v1 released: its views are empty at once, and its buffer is free for the next push
      const free = poolOf(follower).freeCount;
      g1.release();
      assert.equal(g1.bytes.length, 0, 'a released checkpoint still reads');
      assert.equal(poolOf(follower).freeCount, free + 1);
      assert.throws(() => g1.release(), /released twice/);

      const g3 = await follower.get(3, { expectDigest: a3.digest, reuse: true });
      assert.ok(Buffer.from(g3.bytes).equals(versions[2]!.bytes));
      g2.release();
      assert.equal(g2.bytes.length, 0);
      const before4 = poolOf(follower).freeCount;
      await learner.put(4, versions[3]!.bytes, versions[3]!.digest);
      const g4 = await follower.get(4, { expectDigest: (await nextAnnouncement(it)).digest, reuse: true });
      assert.ok(Buffer.from(g4.bytes).equals(versions[3]!.bytes));
      assert.ok(Buffer.from(g3.bytes).equals(versions[2]!.bytes), 'a held checkpoint was overwritten');
      // v4 took a free buffer; the receiver let go of v3 (still held by its consumer, so not freed)
      assert.equal(poolOf(follower).freeCount, before4 - 1, 'the push did not reuse a released buffer');
    } finally {
      await watch.stop();
    }
  });
}

test('a late joiner (its first checkpoint from the store) has a buffer ready for each of the next two pushes', async () => {
  const runId = 'pool-late';
  const size = 300 * 1024 + 5;
  const learner = await CheckpointStore.open(learnerNc, { runId });
  const follower = await CheckpointStore.open(followerNc, { runId });
  const versions = [1, 2, 3].map(() => {
    const bytes = randomBytes(size);
    return { bytes, digest: sha256Digest(bytes) };
  });
  await learner.put(1, versions[0]!.bytes, versions[0]!.digest);
  const watch = await follower.watch();
  const it = watch[Symbol.asyncIterator]();
  try {
    // v1 was announced before the watch: read from the store, outside the pool
    const g1 = await follower.get(1, { expectDigest: (await nextAnnouncement(it)).digest, reuse: true });
    assert.ok(Buffer.from(g1.bytes).equals(versions[0]!.bytes));
    assert.equal(poolOf(follower).freeCount, 2, 'the join made a buffer for the held version\'s successor and the next push');
    await learner.put(2, versions[1]!.bytes, versions[1]!.digest);
    const g2 = await follower.get(2, { expectDigest: (await nextAnnouncement(it)).digest, reuse: true });
    g1.release();
    // v2 is held in a pool buffer; v1's bytes do not come back: v3 still finds one ready
    assert.equal(poolOf(follower).freeCount, 1, 'no buffer ready for the push after the join\'s');
    await learner.put(3, versions[2]!.bytes, versions[2]!.digest);
    const g3 = await follower.get(3, { expectDigest: (await nextAnnouncement(it)).digest, reuse: true });
    assert.ok(Buffer.from(g3.bytes).equals(versions[2]!.bytes));
    g2.release();
    assert.equal(poolOf(follower).freeCount, 1);
    g3.release();
  } finally {
    await watch.stop();
  }
});

/** Parameters of a small network (float32), different per seed. */
function params(seed: number): TensorMap {
  const m: TensorMap = new Map();
  for (const [name, n] of [['a.weight', 40_000], ['b.weight', 50_000]] as const) {
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = Math.sin(seed * 1000 + i);
    m.set(name, { shape: [n], data });
  }
  return m;
}

test('the policy follower: a version in use by a policy call keeps its parameters across a swap; released after done()', async () => {
  const runId = 'pool-follower';
  const learner = await CheckpointStore.open(learnerNc, { runId });
  const store = await CheckpointStore.open(followerNc, { runId });
  const shapes = new Map([...params(0)].map(([k, t]) => [k, t.shape]));
  const noop = () => {};
  const ctx = { runId, stopping: false, log: { info: noop, warn: noop, error: noop, debug: noop }, metrics: { get: () => ({ set: noop, inc: noop }) } } as unknown as RoleContext;
  const announced: number[] = [];
  const follower = new PolicyFollower(ctx, store, shapes, () => announced.push(follower.announcedVersion ?? -1));
  await follower.start();
  const publish = async (v: number) => {
    const enc = encodeCheckpoint({ meta: { runId, version: v, step: v, lastBatchId: null, configHash: 'x' }, params: params(v) });
    await learner.put(v, enc.bytes, `sha256:${enc.digest}`);
    while (follower.announcedVersion !== v) await new Promise((r) => setTimeout(r, 5));
    assert.equal(await follower.swapToNewest(), true);
    assert.equal(follower.current?.version, v);
  };
  try {
    await publish(1);
    const use1 = follower.use();
    const w1 = use1.policy.params.get('a.weight')!.data;
    await publish(2);
    await publish(3);
    // v1 is in use (a policy call reading it): swapping twice did not release or overwrite it
    assert.deepEqual(w1, params(1).get('a.weight')!.data);
    use1.done();
    assert.equal(w1.length, 0, 'done() with v1 replaced: its parameters are released (detached)');
    assert.throws(() => use1.done(), /twice/);
    // the held version, not in use, is released as soon as it is replaced
    const w3 = follower.current!.params.get('b.weight')!.data;
    await publish(4);
    assert.equal(w3.length, 0);
    assert.deepEqual(follower.current!.params.get('b.weight')!.data, params(4).get('b.weight')!.data);
  } finally {
    await follower.stop();
  }
});

test('fetchCheckpoint: a refused checkpoint is released; a fetch that is never released stays valid', async () => {
  const runId = 'pool-fetch';
  const learner = await CheckpointStore.open(learnerNc, { runId });
  const store = await CheckpointStore.open(followerNc, { runId });
  const watch = await store.watch();
  const it = watch[Symbol.asyncIterator]();
  const shapes = new Map([...params(0)].map(([k, t]) => [k, t.shape]));
  try {
    const put = async (v: number) => {
      const enc = encodeCheckpoint({ meta: { runId, version: v, step: v, lastBatchId: null, configHash: 'x' }, params: params(v) });
      await learner.put(v, enc.bytes, `sha256:${enc.digest}`);
      return nextAnnouncement(it);
    };
    const a1 = await put(1);
    const kept = await fetchCheckpoint(store, a1, { runId, shapes, views: true, reuse: true });
    // another run id: refused, and its buffer goes back (the receiver still holds it as its newest push)
    await assert.rejects(fetchCheckpoint(store, await put(2), { runId: 'another', shapes, views: true, reuse: true }), /belongs to run/);
    for (let v = 3; v <= 6; v++) await fetchCheckpoint(store, await put(v), { runId, shapes, views: true, reuse: true });
    assert.deepEqual(kept.params.get('a.weight')!.data, params(1).get('a.weight')!.data, 'an unreleased checkpoint was overwritten');
  } finally {
    await watch.stop();
  }
});
