// Checkpoint broadcast paths (lib/transport/checkpoint-push.ts, object-chunks.ts): a watching store takes a pushed
// checkpoint only when its bytes hash to the announced digest, and reads the store otherwise; objects written by
// CheckpointStore.put stay readable by nats.js's own object store (same layout, same digest format).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { connect, type NatsConnection } from 'nats';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';
import { CheckpointStore, connectNats, sha256Digest, type Announcement } from '../../lib/transport/nats.ts';
import { pushHeaders } from '../../lib/transport/checkpoint-push.ts';
import { CHECKPOINT_MAX_PAYLOAD } from '../../lib/transport/nats-server.ts';
import { encodeCheckpoint, type TensorMap } from '../../lib/checkpoint/index.ts';
import { fetchCheckpoint } from '../../lib/worker/checkpoints.ts';

let nats: TestNatsServer;
let learnerNc: NatsConnection;
let followerNc: NatsConnection;

before(async () => {
  nats = await startNatsServer();
  learnerNc = await connectNats({ url: nats.url, name: 'push-learner' });
  followerNc = await connectNats({ url: nats.url, name: 'push-follower' });
});
after(async () => {
  await learnerNc?.close();
  await followerNc?.close();
  await nats?.stop();
});

/** Bytes spanning several chunks of the server's max_payload (1 MiB by default). */
const ckpt = () => {
  const bytes = randomBytes(2.5 * 1024 * 1024 + 17);
  return { bytes, digest: sha256Digest(bytes) };
};

async function nextAnnouncement(it: AsyncIterator<Announcement>): Promise<Announcement> {
  const r = await it.next();
  assert.ok(!r.done, 'the watch ended');
  return r.value;
}

test('a watching store uses the pushed bytes; nats.js reads the stored object; a store that missed the push reads the store', async () => {
  const runId = 'push-a';
  const learner = await CheckpointStore.open(learnerNc, { runId });
  const follower = await CheckpointStore.open(followerNc, { runId });
  const watch = await follower.watch();
  const it = watch[Symbol.asyncIterator]();
  const c = ckpt();
  await learner.put(1, c.bytes, c.digest, { step: 1 });
  const ann = await nextAnnouncement(it);
  assert.equal(ann.digest, c.digest);

  // the stored object is nats.js's format: its own get checks its SHA-256 of the chunks
  const os = await learnerNc.jetstream().views.os(learner.bucket);
  const viaNatsJs = await os.getBlob('v0000000001');
  assert.ok(viaNatsJs && Buffer.from(viaNatsJs).equals(c.bytes));

  // the stored copy is now replaced behind the store's back: the watcher still holds the pushed, verified bytes
  const info = (await os.info('v0000000001'))!;
  const evil = Buffer.from(c.bytes);
  evil[100]! ^= 0xff;
  await os.putBlob({ name: info.name, metadata: info.metadata }, evil);
  const got = await follower.get(1, { expectDigest: ann.digest });
  assert.ok(Buffer.from(got.bytes).equals(c.bytes));
  assert.equal(got.announcement.meta['step'], 1);
  // a store that received no push reads the tampered object and refuses it
  const late = await CheckpointStore.open(followerNc, { runId });
  await assert.rejects(late.get(1, { expectDigest: ann.digest }), /digest mismatch/);
  await watch.stop();
});

test('a forged push (bytes that do not hash to their digest) is ignored: the watcher reads the store', async () => {
  const runId = 'push-b';
  const learner = await CheckpointStore.open(learnerNc, { runId, push: false });
  const follower = await CheckpointStore.open(followerNc, { runId });
  const watch = await follower.watch();
  const it = watch[Symbol.asyncIterator]();
  const c = ckpt();
  // someone who may publish object chunks sends other bytes under the real digest, before the learner's put
  learnerNc.publish(`$O.${learner.bucket}.C.push.forged`, randomBytes(64), { headers: pushHeaders(1, 64, 0, c.digest, '{}') });
  await learnerNc.flush();
  await learner.put(1, c.bytes, c.digest);
  const ann = await nextAnnouncement(it);
  const got = await follower.get(1, { expectDigest: ann.digest });
  assert.ok(Buffer.from(got.bytes).equals(c.bytes));
  await watch.stop();
});

test("a stored chunk replayed into the push subject (the stream's headers on it) is not taken as a push", async () => {
  // a reader may send a direct get of the bucket with the push subject as its reply: the server's answer, the stored
  // chunk with its Ckpt-* headers and the stream's own, reaches its account's followers. Before (review23f), a replayed
  // first chunk restarted the assembly of the checkpoint being pushed; here a whole replayed checkpoint would be held
  const runId = 'push-replay';
  const learner = await CheckpointStore.open(learnerNc, { runId, push: false });
  const follower = await CheckpointStore.open(followerNc, { runId });
  const watch = await follower.watch();
  const it = watch[Symbol.asyncIterator]();
  const bytes = randomBytes(64 * 1024);
  const digest = sha256Digest(bytes);
  const h = pushHeaders(1, bytes.length, 0, digest, '{}');
  h.set('Nats-Stream', `OBJ_${learner.bucket}`);
  h.set('Nats-Sequence', '7');
  learnerNc.publish(`$O.${learner.bucket}.C.push.replayed`, bytes, { headers: h });
  await learnerNc.flush();
  await learner.put(1, bytes, digest);
  const ann = await nextAnnouncement(it);
  // the stored copy is replaced behind the store's back: a watcher that took the replay would still hold the bytes
  const os = await learnerNc.jetstream().views.os(learner.bucket);
  const info = (await os.info('v0000000001'))!;
  const evil = Buffer.from(bytes);
  evil[100]! ^= 0xff;
  await os.putBlob({ name: info.name, metadata: info.metadata }, evil);
  await assert.rejects(follower.get(1, { expectDigest: ann.digest }), /digest mismatch/);
  await watch.stop();
});

test('a checkpoint in one chunk (max_payload 8 MiB) is held as received, aligned: its tensors decode as views of it', async () => {
  const big = await startNatsServer({ maxPayload: CHECKPOINT_MAX_PAYLOAD });
  const lnc = await connectNats({ url: big.url, name: 'one-chunk-learner' });
  const fnc = await connectNats({ url: big.url, name: 'one-chunk-follower' });
  let watch: Awaited<ReturnType<CheckpointStore['watch']>> | undefined;
  try {
    const runId = 'push-one';
    const params: TensorMap = new Map([
      ['a.weight', { shape: [300, 1000], data: Float32Array.from({ length: 300_000 }, (_, i) => Math.sin(i)) }],
      ['b.bias', { shape: [3], data: new Float32Array([1, -2, 3.5]) }],
    ]);
    const enc = encodeCheckpoint({ meta: { runId, version: 1, step: 1, lastBatchId: null, configHash: 'h' }, params });
    const shapes = new Map([...params].map(([k, t]) => [k, t.shape]));
    const learner = await CheckpointStore.open(lnc, { runId });
    const follower = await CheckpointStore.open(fnc, { runId });
    watch = await follower.watch();
    const it = watch[Symbol.asyncIterator]();
    await learner.put(1, enc.bytes, `sha256:${enc.digest}`);
    const ann = await nextAnnouncement(it);
    const got = await follower.get(1, { expectDigest: ann.digest });
    assert.ok(Buffer.from(got.bytes).equals(enc.bytes));
    // the payload follows the (padded) headers in nats.js's buffer of the message: 8-aligned
    assert.equal(got.bytes.byteOffset % 8, 0, `payload at offset ${got.bytes.byteOffset}`);
    const ck = await fetchCheckpoint(follower, ann, { runId, shapes, views: true });
    for (const [name, t] of params) {
      assert.deepEqual(ck.params.get(name)!.data, t.data, name);
      assert.equal(ck.params.get(name)!.data.buffer, got.bytes.buffer, `${name} is a view of the received message`);
    }
    // a store that missed the push reads the one stored chunk, verified the same way
    const late = await CheckpointStore.open(fnc, { runId });
    const read = await fetchCheckpoint(late, ann, { runId, shapes, views: true });
    for (const [name, t] of params) assert.deepEqual(read.params.get(name)!.data, t.data, name);
  } finally {
    await watch?.stop();
    await lnc.close();
    await fnc.close();
    await big.stop();
  }
});

/** A loopback TCP proxy to `port`: hold() stops forwarding server -> client (buffering it), cut() drops every connection. */
async function proxyTo(port: number): Promise<{ url: string; hold(): void; cut(): void; close(): void }> {
  const pairs: Array<[Socket, Socket]> = [];
  let holding = false;
  const server = createServer((client) => {
    const upstream = netConnect(port, '127.0.0.1');
    pairs.push([client, upstream]);
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d) => { if (!holding) client.write(d); });
    for (const s of [client, upstream]) s.on('error', () => {}).on('close', () => { client.destroy(); upstream.destroy(); });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const cut = () => { for (const [a, b] of pairs.splice(0)) { a.destroy(); b.destroy(); } };
  return {
    url: `nats://127.0.0.1:${(server.address() as { port: number }).port}`,
    hold: () => { holding = true; },
    cut: () => { holding = false; cut(); },
    close: () => { cut(); server.close(); },
  };
}

test('a follower whose connection drops while a checkpoint and its announcement are sent catches up on reconnect (from the store)', async () => {
  const proxy = await proxyTo(nats.port);
  const fnc = await connect({ servers: proxy.url, name: 'cut-follower', reconnectTimeWait: 100, maxReconnectAttempts: -1 });
  let watch: Awaited<ReturnType<CheckpointStore['watch']>> | undefined;
  try {
    const runId = 'push-cut';
    const learner = await CheckpointStore.open(learnerNc, { runId });
    const follower = await CheckpointStore.open(fnc, { runId });
    watch = await follower.watch();
    const it = watch[Symbol.asyncIterator]();
    const c1 = ckpt();
    await learner.put(1, c1.bytes, c1.digest);
    assert.equal((await nextAnnouncement(it)).version, 1);
    // v2's chunks and announcement reach the proxy but not the follower; then its connection drops
    proxy.hold();
    const c2 = ckpt();
    await learner.put(2, c2.bytes, c2.digest);
    await new Promise((r) => setTimeout(r, 200));
    proxy.cut();
    // no third announcement comes: only the watch's look at the stream after the reconnect can yield v2
    const got = await Promise.race([nextAnnouncement(it), new Promise<null>((r) => setTimeout(() => r(null), 45_000).unref())]);
    assert.ok(got, 'v2 was not yielded within 45 s of the cut');
    assert.equal(got.version, 2);
    const back = await follower.get(2, { expectDigest: got.digest });
    assert.ok(Buffer.from(back.bytes).equals(c2.bytes));
  } finally {
    await watch?.stop();
    await fnc.close();
    proxy.close();
  }
});
