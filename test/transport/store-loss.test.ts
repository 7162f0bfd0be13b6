// The NATS store lost (nats-server restarted on an empty store directory): writes fail as a lost store
// (isStoreLost), the owner re-creates its stream or bucket and the write succeeds on the one retry
// (recreatingOnLoss), readers see no checkpoint and create nothing, and reconnections are reported.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import type { NatsConnection } from 'nats';
import { freePort } from '../helpers/nats.ts';
import {
  CheckpointStore,
  connectNats,
  isStoreLost,
  onNatsReconnect,
  recreatingOnLoss,
  RunStateStore,
  sha256Digest,
  spawnNatsServer,
  type NatsServerProcess,
} from '../../lib/transport/index.ts';

const RUN = 'store-loss';
let dir: string;
let port: number;
let server: NatsServerProcess;
let nc: NatsConnection;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'store-loss-'));
  port = await freePort();
  server = await spawnNatsServer({ port, storeDir: join(dir, 'nats') });
  nc = await connectNats({ url: server.url, name: 'store-loss-test' });
});
after(async () => {
  await nc?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const ckpt = (n: number) => {
  const bytes = randomBytes(n);
  return { bytes, digest: sha256Digest(bytes) };
};

test('after the server restarts empty, owners re-create their stores on the failed write; readers create nothing', async () => {
  const schema = z.object({ ackedSeq: z.number() });
  const state = await RunStateStore.open(nc, { runId: RUN, schema });
  const rev = await state.create({ ackedSeq: 3 });
  const owner = await CheckpointStore.open(nc, { runId: RUN });
  const reader = await CheckpointStore.open(nc, { runId: RUN });
  const c1 = ckpt(200_000);
  await owner.put(1, c1.bytes, c1.digest);
  assert.equal((await reader.latest())?.version, 1);
  assert.equal(await owner.recreate(), false, 'nothing to re-create while the store is there');
  assert.equal(await state.recreate(), false);

  let reconnects = 0;
  const stopWatching = onNatsReconnect(nc, () => reconnects++);
  await server.stop();
  rmSync(join(dir, 'nats'), { recursive: true, force: true });
  server = await spawnNatsServer({ port, storeDir: join(dir, 'nats') });
  const t0 = Date.now();
  while (reconnects === 0 && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 50));
  assert.equal(reconnects, 1, 'the reconnection was reported');
  stopWatching();

  // every write fails as a lost store; a reader sees no checkpoint and creates nothing
  await assert.rejects(state.update({ ackedSeq: 4 }, rev), isStoreLost);
  const c2 = ckpt(1000);
  await assert.rejects(owner.put(2, c2.bytes, c2.digest)); // stream not found, or a direct get nobody answers
  assert.equal(await reader.latest(), null);
  const jsm = await nc.jetstreamManager();
  await assert.rejects(jsm.streams.info(owner.stream), isStoreLost, 'the reader did not create the announcement stream');
  await assert.rejects(jsm.streams.info(`OBJ_${owner.bucket}`), isStoreLost);

  // the owner: re-created on the failed write, written on the one retry
  let recovered = 0;
  const ann = await recreatingOnLoss(() => owner.put(2, c2.bytes, c2.digest), async () => {
    recovered++;
    return owner.recreate();
  });
  assert.equal(recovered, 1);
  assert.equal(ann.version, 2);
  const got = await reader.get(2, { expectDigest: c2.digest });
  assert.ok(Buffer.from(got.bytes).equals(c2.bytes));
  assert.equal((await reader.latest())?.version, 2);
  assert.equal(await owner.recreate(), false);
  await assert.rejects(recreatingOnLoss(() => Promise.reject(Object.assign(new Error('TIMEOUT'), { code: 'TIMEOUT' })), () => owner.recreate()), /TIMEOUT/,
    'a timeout with the store present is not retried');

  // the run state: bucket re-created, the value created again (compare-and-set against a missing one)
  await recreatingOnLoss(() => state.get(), () => state.recreate());
  assert.equal(await state.get(), null);
  await state.create({ ackedSeq: 4 });
  assert.deepEqual((await state.get())?.value, { ackedSeq: 4 });

  // any other failure is not a lost store, and a write that fails twice is the caller's
  await assert.rejects(recreatingOnLoss(() => Promise.reject(new Error('boom')), () => assert.fail('not a lost store')), /boom/);
  await assert.rejects(
    recreatingOnLoss(() => Promise.reject(Object.assign(new Error('stream not found'), { api_error: { err_code: 10059 } })), async () => false),
    /stream not found/,
  );
});

test('a lost store with followers watching: the owner\'s put fails at once as a lost store, not at the chunks\' acknowledgement timeout', { timeout: 20_000 }, async () => {
  // Followers subscribe to the chunk subjects (checkpoint pushes), so a chunk published where no stream stores it
  // is delivered to them and answered by nobody: no 503, only the 30 s acknowledgement timeout (fault e took 30 s).
  const run = `${RUN}-watched`;
  const owner = await CheckpointStore.open(nc, { runId: run });
  const follower = await CheckpointStore.open(nc, { runId: run });
  const watch = await follower.watch();
  try {
    const c1 = ckpt(50_000);
    await owner.put(1, c1.bytes, c1.digest);
    let reconnects = 0;
    const stopWatching = onNatsReconnect(nc, () => reconnects++);
    await server.stop();
    rmSync(join(dir, 'nats'), { recursive: true, force: true });
    server = await spawnNatsServer({ port, storeDir: join(dir, 'nats') });
    while (reconnects === 0) await new Promise((r) => setTimeout(r, 50));
    stopWatching();
    const c2 = ckpt(50_000);
    await assert.rejects(owner.put(2, c2.bytes, c2.digest), isStoreLost);
    assert.equal(await owner.recreate(), true);
    assert.equal((await owner.put(2, c2.bytes, c2.digest)).version, 2);
  } finally {
    await watch.stop();
  }
});
