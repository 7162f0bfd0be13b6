import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { natsForFile, freePort } from '../helpers/nats.ts';
import {
  CheckpointIntegrityError,
  CheckpointStore,
  connectNats,
  RevisionConflictError,
  RunStateStore,
  runStateApiPrefix,
  sha256Digest,
  type Announcement,
} from '../../lib/transport/nats.ts';
import { ensureNatsServer, isReachable } from '../../lib/transport/nats-server.ts';

const shared = natsForFile('nats-test');

const ckpt = (n: number) => {
  const bytes = randomBytes(n);
  return { bytes, digest: sha256Digest(bytes) };
};

test('checkpoint put/get round-trip, digest verified, idempotent re-put, latest, prune', async () => {
  const seen: number[] = [];
  const store = await CheckpointStore.open(shared.nc, { runId: 'run-a', onGet: ({ bytes }) => seen.push(bytes) });
  assert.equal(await store.latest(), null);
  const c1 = ckpt(300_000); // several object-store chunks
  const ann = await store.put(1, c1.bytes, c1.digest, { step: 10, last_batch_seq: 4 });
  assert.deepEqual({ v: ann.version, n: ann.name, d: ann.digest, s: ann.size }, { v: 1, n: 'v0000000001', d: c1.digest, s: 300_000 });
  const got = await store.get(1, { expectDigest: c1.digest });
  assert.ok(Buffer.from(got.bytes).equals(c1.bytes));
  assert.deepEqual(got.announcement.meta, { step: 10, last_batch_seq: 4 });
  assert.deepEqual(seen, [300_000]);

  // same version, same bytes: fine (re-announce); different bytes: refused
  await store.put(1, c1.bytes, c1.digest);
  const other = ckpt(10);
  await assert.rejects(store.put(1, other.bytes, other.digest), /v1 already exists .* refusing to replace/);
  await assert.rejects(store.put(2, other.bytes, c1.digest), CheckpointIntegrityError);
  await assert.rejects(store.put(2, other.bytes, 'md5:abc'), /digest must look like sha256:<64 hex>/);
  await assert.rejects(store.get(1, { expectDigest: other.digest }), /stored digest .* differs from the expected/);
  await assert.rejects(store.get(9), /v9 is not in checkpoints-run-a \(never published, or pruned/);

  for (let v = 2; v <= 5; v++) {
    const c = ckpt(100 + v);
    await store.put(v, c.bytes, c.digest);
  }
  assert.equal((await store.latest())!.version, 5);
  assert.deepEqual(await store.prune(2), [1, 2, 3]);
  assert.deepEqual(await store.versions(), [4, 5]);
  await assert.rejects(store.get(2), /pruned/);
  assert.equal((await store.get(5)).bytes.length, 105);
  await assert.rejects(store.prune(0), /keepLast must be an integer >= 1/);
});

test('a retried or refused put leaves only the stored object\'s chunks (the copy it wrote beside the lookup is purged)', async () => {
  const store = await CheckpointStore.open(shared.nc, { runId: 'run-retry' });
  const jsm = await shared.nc.jetstreamManager();
  const chunkSubjects = async () => {
    const si = await jsm.streams.info('OBJ_checkpoints-run-retry', { subjects_filter: '$O.checkpoints-run-retry.C.>' });
    return Object.keys(si.state.subjects ?? {}).sort();
  };
  const c1 = ckpt(300_000);
  await store.put(1, c1.bytes, c1.digest);
  const first = await chunkSubjects();
  assert.equal(first.length, 1);
  // the same bytes again: re-announced, the chunks written while the lookup was pending are purged
  await store.put(1, c1.bytes, c1.digest);
  assert.deepEqual(await chunkSubjects(), first);
  // other bytes for the announced version: refused, and its chunks purged too
  const other = ckpt(1000);
  await assert.rejects(store.put(1, other.bytes, other.digest), /v1 already exists .* refusing to replace/);
  assert.deepEqual(await chunkSubjects(), first);
  assert.ok(Buffer.from((await store.get(1, { expectDigest: c1.digest })).bytes).equals(c1.bytes));
  // a new version adds its own chunks
  const c2 = ckpt(2000);
  await store.put(2, c2.bytes, c2.digest);
  assert.equal((await chunkSubjects()).length, 2);
});

test('get refuses corrupted and truncated objects with a clear error', async () => {
  const store = await CheckpointStore.open(shared.nc, { runId: 'run-b' });
  const good = ckpt(5000);
  await store.put(1, good.bytes, good.digest);
  const os = await shared.nc.jetstream().views.os('checkpoints-run-b');
  // someone overwrites the object's bytes, keeping the recorded digest/size
  const info = (await os.info('v0000000001'))!;
  const evil = Buffer.from(good.bytes);
  evil[1234]! ^= 0xff;
  await os.putBlob({ name: 'v0000000001', metadata: info.metadata! }, evil);
  await assert.rejects(store.get(1), (e: unknown) => e instanceof CheckpointIntegrityError && /v1: digest mismatch, fetched sha256:[0-9a-f]+, expected/.test(e.message));
  // truncated
  await os.putBlob({ name: 'v0000000001', metadata: info.metadata! }, good.bytes.subarray(0, 4000));
  await assert.rejects(store.get(1), (e: unknown) => e instanceof CheckpointIntegrityError && /truncated or padded: got 4000 bytes, its announcement says 5000/.test(e.message));
  // an object not written by put()
  await os.putBlob({ name: 'v0000000002' }, good.bytes);
  await assert.rejects(store.get(2), /no valid digest\/size metadata/);
});

test('watch yields the latest existing checkpoint first (late joiner), then new ones in order', async () => {
  const store = await CheckpointStore.open(shared.nc, { runId: 'run-c' });
  for (const v of [1, 2, 3]) {
    const c = ckpt(64);
    await store.put(v, c.bytes, c.digest);
  }
  const watch = await store.watch();
  const got: Announcement[] = [];
  const reader = (async () => {
    for await (const a of watch) {
      got.push(a);
      if (a.version === 5) break;
    }
  })();
  await waitFor(() => got.length === 1);
  assert.equal(got[0]!.version, 3);
  // a second store handle (another process) publishes; a stale re-announce of v2 is skipped by the watcher
  const other = await CheckpointStore.open(shared.nc, { runId: 'run-c' });
  const c4 = ckpt(64);
  await other.put(4, c4.bytes, c4.digest);
  await shared.nc.jetstream().publish('recovery.run-c.checkpoint', new TextEncoder().encode('{"not":"an announcement"}'));
  const c5 = ckpt(64);
  await other.put(5, c5.bytes, c5.digest);
  await reader;
  assert.deepEqual(got.map((a) => a.version), [3, 4, 5]);
  assert.equal(got[1]!.digest, c4.digest);
  const fetched = await store.get(got[2]!.version, { expectDigest: got[2]!.digest });
  assert.ok(Buffer.from(fetched.bytes).equals(c5.bytes));
  await watch.stop();

  // a watcher on an empty run waits for the first checkpoint
  const empty = await CheckpointStore.open(shared.nc, { runId: 'run-empty' });
  const w2 = await empty.watch();
  const first = (async () => {
    for await (const a of w2) return a.version;
    return -1;
  })();
  const c = ckpt(8);
  await empty.put(7, c.bytes, c.digest);
  assert.equal(await first, 7);
  await w2.stop();
});

const State = z.object({ learner_version: z.number().int(), next_batch_seq: z.number().int(), owner: z.string() });

test('an announcement without its object (a forged version jump) is ignored by latest() and watch(): later genuine checkpoints still arrive', async () => {
  const store = await CheckpointStore.open(shared.nc, { runId: 'run-forged' });
  const c1 = ckpt(64);
  await store.put(1, c1.bytes, c1.digest);
  const refusals: string[] = [];
  const watch = await store.watch({ onInvalid: (e) => refusals.push(e.message) });
  const got: number[] = [];
  const reader = (async () => {
    for await (const a of watch) {
      got.push(a.version);
      if (a.version === 2) break;
    }
  })();
  await waitFor(() => got.length === 1);
  // anyone who can publish on the subject announces v999999 with no object behind it
  const forged: Announcement = { run_id: 'run-forged', version: 999_999, name: 'v0000999999', digest: `sha256:${'ab'.repeat(32)}`, size: 10, meta: {}, published_unix_ms: Date.now() };
  await shared.nc.jetstream().publish('recovery.run-forged.checkpoint', new TextEncoder().encode(JSON.stringify(forged)));
  await waitFor(() => refusals.length === 1);
  assert.match(refusals[0]!, /announcement of v999999 has no checkpoint object .*: ignored/);
  assert.equal((await store.latest())!.version, 1, 'latest() skips the forged announcement');
  // the genuine v2 still reaches the watcher
  const c2 = ckpt(64);
  await store.put(2, c2.bytes, c2.digest);
  await reader;
  assert.deepEqual(got, [1, 2]);
  assert.equal((await store.latest())!.version, 2);
  await watch.stop();
});

test('run state on a server without the accounts: a stream that captures RS.> is not taken for the run-state account', async () => {
  // its publish ack answers RS.API.INFO; before (review23f), the store then used the RS.API prefix and failed to open
  const nc = await connectNats({ url: shared.nats.url, name: 'rs-capture' });
  try {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: 'rs-capture', subjects: ['RS.>'] });
    assert.equal(await runStateApiPrefix(nc), '$JS.API');
    const st = await RunStateStore.open(nc, { runId: 'run-rs', schema: State });
    await st.create({ learner_version: 0, next_batch_seq: 1, owner: 'o' });
    assert.equal((await st.get())!.value.owner, 'o');
    await jsm.streams.delete('rs-capture');
  } finally {
    await nc.close();
  }
});

test('run state: zod-validated, create-once, CAS update, concurrent modify never loses a write', async () => {
  const a = await RunStateStore.open(shared.nc, { runId: 'run-s', schema: State });
  const b = await RunStateStore.open(shared.nc, { runId: 'run-s', schema: State });
  assert.equal(await a.get(), null);
  const r1 = await a.create({ learner_version: 0, next_batch_seq: 1, owner: 'orch-a' });
  await assert.rejects(b.create({ learner_version: 0, next_batch_seq: 1, owner: 'orch-b' }), RevisionConflictError);
  const cur = (await b.get())!;
  assert.equal(cur.revision, r1);
  assert.equal(cur.value.owner, 'orch-a');
  const r2 = await a.update({ ...cur.value, learner_version: 1 }, r1);
  // b still holds r1: its update must not clobber a's
  await assert.rejects(b.update({ ...cur.value, owner: 'orch-b' }, r1), (e: unknown) => e instanceof RevisionConflictError && /revision \d+ is no longer current/.test(e.message));
  assert.equal((await a.get())!.revision, r2);
  // invalid values are refused before writing, naming the field
  await assert.rejects(a.update({ learner_version: 'x', next_batch_seq: 1, owner: 'a' } as never, r2), /update runstate-run-s\/state\.learner_version/);
  // there is no unconditional write: the run state changes only by compare-and-set
  assert.equal((a as unknown as { put?: unknown }).put, undefined);
  // 2 x 10 concurrent increments from two handles
  await Promise.all(
    [a, b].flatMap((s) => Array.from({ length: 10 }, () => s.modify((v) => ({ ...v!, next_batch_seq: v!.next_batch_seq + 1 }), { maxRetries: 50 }))),
  );
  assert.equal((await a.get())!.value.next_batch_seq, 21);
  // a corrupt stored value is reported, not returned
  await shared.nc.jetstream().views.kv('runstate-run-s').then((kv) => kv.put('state', '{"learner_version":"oops"}'));
  await assert.rejects(a.get(), /run state runstate-run-s\/state \(revision \d+\)\.learner_version/);
  await assert.rejects(RunStateStore.open(shared.nc, { runId: 'bad.id', schema: State }), /runId "bad.id" must be 1 to 64 letters, digits/);
});

test('stores survive a server restart (JetStream file storage); client reconnects', async () => {
  const store = await CheckpointStore.open(shared.nc, { runId: 'run-r' });
  const c = ckpt(1000);
  await store.put(1, c.bytes, c.digest);
  const reconnected = (async () => {
    for await (const s of shared.nc.status()) if (s.type === 'reconnect') return;
  })();
  const watch = await store.watch();
  const it = watch[Symbol.asyncIterator]();
  assert.equal((await it.next()).value?.version, 1);
  await shared.nats.restart();
  await reconnected;
  assert.equal((await store.latest())?.version, 1);
  assert.ok(Buffer.from((await store.get(1)).bytes).equals(c.bytes));
  // the watch carries on across the restart
  const c2 = ckpt(10);
  await store.put(2, c2.bytes, c2.digest);
  assert.equal((await it.next()).value?.version, 2);
  await watch.stop();
});

test('ensureNatsServer uses a running server, or starts one where nothing answers', async () => {
  const existing = await ensureNatsServer({ url: shared.nats.url });
  assert.equal(existing.spawned, false);
  await existing.stop(); // no-op
  const port = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  const storeDir = mkdtempSync(join(tmpdir(), 'ensure-nats-'));
  const started = await ensureNatsServer({ url, storeDir });
  try {
    assert.equal(started.spawned, true);
    const c2 = await connectNats({ url, name: 'ensure-test' });
    await c2.drain();
  } finally {
    await started.stop();
    rmSync(storeDir, { recursive: true, force: true });
  }
  assert.equal(await isReachable('127.0.0.1', port), false);
  await assert.rejects(ensureNatsServer({ url: 'nats://192.0.2.1:4222' }), /not a local address/);
  await assert.rejects(connectNats({ url, name: 'x', timeoutMs: 500, maxReconnectAttempts: 0 }), /cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+ as x/);
});

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error('timed out waiting for a condition');
    await new Promise((r) => setTimeout(r, 20));
  }
}
