// CheckpointStore.versions() lists a bucket by its stream's record subjects, each read on its own (literal) subject
// (lib/transport/object-listing.ts): no consumer (round 23: no role makes one), and no empty answer while the stream
// holds records. nats.js's os.list() answered [] whenever the server answered its first lookup (last message on
// $O.<bucket>.M.>) 404, which a nats-server 2.10.27 opened over a store directory still in use did (docs/reliability.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { JetStreamManager, NatsConnection } from 'nats';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, natsForFile } from '../helpers/nats.ts';
import { CheckpointStore, connectNats, sha256Digest } from '../../lib/transport/nats.ts';
import { spawnNatsServer, type NatsServerProcess } from '../../lib/transport/nats-server.ts';
import { listObjectRecords } from '../../lib/transport/object-listing.ts';

const shared = natsForFile('listing-test');

async function putVersions(store: CheckpointStore, versions: number[]): Promise<void> {
  for (const v of versions) {
    const b = randomBytes(64 + v);
    await store.put(v, b, sha256Digest(b));
  }
}

test('versions() names every stored record, read subject by subject (deleted ones left out), and prune works', async () => {
  const store = await CheckpointStore.open(shared.nc, { runId: 'listing-subjects' });
  await putVersions(store, [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(await store.versions(), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(await store.prune(2, { keep: [1] }), [0, 2, 3]);
  assert.deepEqual(await store.versions(), [1, 4, 5]);
});

test('an empty bucket lists empty', async () => {
  const store = await CheckpointStore.open(shared.nc, { runId: 'listing-none' });
  assert.deepEqual(await store.versions(), []);
});

test('records the stream counts but the server cannot read: a clear error, not an empty listing', async () => {
  const notFound = Object.assign(new Error('no message found'), { code: '404' });
  const jsm = {
    streams: {
      info: async () => ({ state: { subjects: { '$O.b.M.djAwMDAwMDAwMDE=': 1 } } }),
      getMessage: async () => { throw notFound; },
    },
  } as unknown as JetStreamManager;
  await assert.rejects(listObjectRecords(jsm, 'OBJ_b', 'b'), /object listing of b: none of the 1 record subjects stream OBJ_b says it holds could be read/);
  // another failure of a read is not taken for "no record"
  const jsm503 = { streams: { ...jsm.streams, getMessage: async () => { throw Object.assign(new Error('503'), { code: '503' }); } } } as unknown as JetStreamManager;
  await assert.rejects(listObjectRecords(jsm503, 'OBJ_b', 'b'), /503/);
});

// The fault suite's audit did this (test/faults/suite.ts, until round 12): a second nats-server started over the
// store directory of one still running, which then appended (the learner's last prune). nats-server 2.10.27's
// second server then answers the wildcard lookup os.list() starts with 404 (it indexes the records appended after
// its start but refuses to read past the last one it knew), so os.list() is [] though literal lookups work:
// 6 of 6 probes on 2.10.27, 0 of 6 on 2.9.10 (docs/reliability.md). Two servers over one directory is no
// supported setup; this is the one real server's empty listing at hand. Run it with RECOVERY_GRPO_NATS_SERVER
// pointing at 2.10 (scripts/fetch-nats-server-2.10.sh) to see versions() recover from it.
test('a second server over a store directory the first keeps writing: versions() is not empty', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'listing-two-servers-'));
  const storeDir = join(dir, 'nats');
  const servers: NatsServerProcess[] = [];
  const conns: NatsConnection[] = [];
  const open = async (runId: string, warnings?: string[]) => {
    const s = await spawnNatsServer({ port: await freePort(), storeDir });
    servers.push(s);
    const c = await connectNats({ url: s.url, name: 'listing-two-servers' });
    conns.push(c);
    return { server: s, store: await CheckpointStore.open(c, { runId, ...(warnings ? { onWarning: (m: string) => warnings.push(m) } : {}) }) };
  };
  try {
    // a writer with the learner's prune; stopped (index.db written) and started again over its store
    let w = await open('two-servers');
    const step = async (v: number) => {
      await putVersions(w.store, [v]);
      await w.store.prune(3, { keep: [2] });
    };
    for (let v = 0; v < 30; v++) await step(v);
    await conns.shift()!.drain();
    await servers.shift()!.stop();
    w = await open('two-servers');
    // the reader's server starts over the same directory; the writer then stores v30 and prunes v27
    const warnings: string[] = [];
    const r = await open('two-servers', warnings);
    await step(30);
    assert.deepEqual(await w.store.versions(), [2, 28, 29, 30]);
    const seen = await r.store.versions();
    assert.ok(seen.includes(28) && seen.includes(29), `the reader lists the versions both servers hold: [${seen.join(',')}]`);
  } finally {
    for (const c of conns) await c.drain().catch(() => undefined);
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
