// The object stores' disk use stays bounded by what they keep, whatever the number of versions published
// (review35 F14): CheckpointStore.prune and LearnerStateStore.prune, as the learner calls them after each version, on a
// real nats-server with file storage. Before round 35 every deleted object left a "deleted" record in the 8 MB block
// being written then, so no block ever emptied and the stores held every version ever written (object-chunks.ts
// deleteObject).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from 'nats';
import { freePort } from '../../lib/local/ports.ts';
import { CHECKPOINT_MAX_PAYLOAD, spawnNatsServer, type NatsServerProcess } from '../../lib/transport/nats-server.ts';
import { CheckpointStore, connectNats, sha256Digest } from '../../lib/transport/nats.ts';
import { LearnerStateStore } from '../../lib/worker/learner-state.ts';

/** The file store's largest block: nats-server 2.9/2.10 give an object-store stream (no max_bytes) 8 MB blocks. */
const BLOCK = 8 * 1024 * 1024 + 64 * 1024;
const SIZE = 300_000;
/** The learner's default checkpoints kept (nats.keepCheckpoints); LearnerStateStore keeps 2. */
const KEEP = 5;
/** Measured after N1 and after N2 versions: 40 more versions of 300 KB are 12 MB, over a block, in each store. */
const N1 = 30;
const N2 = 70;

let storeDir: string;
let server: NatsServerProcess;
let nc: NatsConnection;

before(async () => {
  storeDir = mkdtempSync(join(tmpdir(), 'nats-disk-'));
  server = await spawnNatsServer({ port: await freePort(), storeDir, maxPayload: CHECKPOINT_MAX_PAYLOAD });
  nc = await connectNats({ url: server.url, name: 'object-store-disk-test' });
});
after(async () => {
  await nc?.close();
  await server?.stop();
  rmSync(storeDir, { recursive: true, force: true });
});

/** Bytes of every file under the directory of stream `name` in the store (its blocks and their indexes). */
function streamDiskBytes(name: string): number {
  const find = (dir: string): string | undefined => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      if (e.name === name && dir.endsWith('streams')) return join(dir, e.name);
      const found = find(join(dir, e.name));
      if (found) return found;
    }
    return undefined;
  };
  const sum = (dir: string): number => readdirSync(dir, { withFileTypes: true })
    .reduce((n, e) => n + (e.isDirectory() ? sum(join(dir, e.name)) : statSync(join(dir, e.name)).size), 0);
  const dir = find(storeDir);
  assert.ok(dir, `stream ${name}'s directory under ${storeDir}`);
  return sum(dir);
}

test('publishing and pruning versions keeps each object store\'s disk use and stream state bounded', { timeout: 120_000 }, async () => {
  const run = 'disk';
  const store = await CheckpointStore.open(nc, { runId: run });
  const moments = await LearnerStateStore.open(nc, run);
  const jsm = await nc.jetstreamManager();
  const streams = [`OBJ_checkpoints-${run}`, `OBJ_${moments.bucket}`];
  const stored = new Set<number>();
  const measure = async () => Promise.all(streams.map(async (s) => ({ disk: streamDiskBytes(s), state: (await jsm.streams.info(s)).state })));
  let first: Awaited<ReturnType<typeof measure>> | undefined;
  for (let v = 1; v <= N2; v++) {
    // as the learner does per version: its moments, the checkpoint, then the prunes (learner/index.ts)
    const state = randomBytes(SIZE);
    await moments.putEncoded(v, { bytes: state, digest: sha256Digest(state).slice(7) });
    const ckpt = randomBytes(SIZE);
    await store.put(v, ckpt, sha256Digest(ckpt));
    stored.add(v);
    for (const d of await store.prune(KEEP, { stored })) stored.delete(d);
    await moments.prune(v);
    if (v === N1) first = await measure();
  }
  const last = await measure();
  assert.deepEqual(await store.versions(), [66, 67, 68, 69, 70]);
  assert.equal((await store.get(70)).bytes.length, SIZE);
  await assert.rejects(store.get(65), /not in checkpoints-disk \(never published, or pruned/);
  for (const [i, s] of streams.entries()) {
    const was = first![i]!;
    const now = last[i]!;
    const kept = i === 0 ? KEEP : 2;
    // what the stream holds: the kept objects' chunk and record each, nothing per deleted version
    assert.equal(now.state.messages, was.state.messages, `${s}: messages at ${N1} and ${N2} versions`);
    assert.equal(now.state.messages, 2 * kept, `${s}: one chunk and one record per kept object`);
    assert.ok(now.state.bytes < kept * (SIZE + 4096), `${s}: ${now.state.bytes} bytes live`);
    // on disk: the block being written, and at most one before it holding kept objects; never one per 8 MB published
    assert.ok(now.disk <= was.disk + BLOCK, `${s}: ${now.disk} bytes on disk after ${N2} versions, ${was.disk} after ${N1}`);
    assert.ok(now.disk <= 2 * BLOCK, `${s}: ${now.disk} bytes on disk after ${N2} versions of ${SIZE} bytes`);
  }
});

test('a bucket pruned before round 35 gives its disk space back when its writer opens it', { timeout: 120_000 }, async () => {
  const run = 'disk-old';
  const versions = 60;
  const jsm = await nc.jetstreamManager();
  const first = await CheckpointStore.open(nc, { runId: run });
  const firstMoments = await LearnerStateStore.open(nc, run);
  // pruned as before round 35: nats.js's ObjectStore.delete, which leaves a "deleted" record per object
  const os = [await nc.jetstream().views.os(`checkpoints-${run}`), await nc.jetstream().views.os(firstMoments.bucket)];
  const name = (v: number) => [`v${String(v).padStart(10, '0')}`, `${run}/optim-v${String(v).padStart(10, '0')}`];
  const streams = [`OBJ_checkpoints-${run}`, `OBJ_${firstMoments.bucket}`];
  // the moments' bucket is shared by every run (a server without grants): the other test's kept moments are in it
  const others = await Promise.all(streams.map(async (s) => (await jsm.streams.info(s)).state.messages));
  const kept = new Map<number, string>();
  for (let v = 1; v <= versions; v++) {
    const state = randomBytes(SIZE);
    await firstMoments.putEncoded(v, { bytes: state, digest: sha256Digest(state).slice(7) });
    const ckpt = randomBytes(SIZE);
    await first.put(v, ckpt, sha256Digest(ckpt));
    kept.set(v, sha256Digest(ckpt));
    if (v > KEEP) {
      for (const [i, n] of name(v - KEEP).entries()) await os[i]!.delete(n);
      kept.delete(v - KEEP);
    }
  }
  for (const [i, s] of streams.entries()) {
    assert.ok(streamDiskBytes(s) > 2 * BLOCK, `${s}: ${streamDiskBytes(s)} bytes on disk before (the records keep its blocks)`);
    assert.equal((await jsm.streams.info(s)).state.messages, others[i]! + 2 * KEEP + (versions - KEEP), `${s}: kept objects and a record per deleted one`);
  }
  // the next writer's open purges the deleted records: the blocks that held only them go
  const store = await CheckpointStore.open(nc, { runId: run });
  await LearnerStateStore.open(nc, run);
  for (const [i, s] of streams.entries()) {
    assert.equal((await jsm.streams.info(s)).state.messages, others[i]! + 2 * KEEP, `${s}: the kept objects only`);
    assert.ok(streamDiskBytes(s) <= 2 * BLOCK, `${s}: ${streamDiskBytes(s)} bytes on disk after`);
  }
  assert.deepEqual(await store.versions(), [...kept.keys()]);
  for (const [v, digest] of kept) assert.equal((await store.get(v, { expectDigest: digest })).bytes.length, SIZE);
  await assert.rejects(store.get(versions - KEEP), /never published, or pruned/);
});
