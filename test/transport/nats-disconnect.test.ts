// A nats-server killed -9 and restarted on the same port and store while requests are in flight (as the faults test's
// supervisor does): the requests fail at the drop (NatsDisconnectedError), not at their timeout (30 s for a chunk), and
// a request made while the server is down is sent once it is back (lib/transport/nats-disconnect.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { NatsConnection } from 'nats';
import { natsForFile, startNatsServer } from '../helpers/nats.ts';
import { z } from 'zod';
import { CheckpointIntegrityError, CheckpointStore, closeNats, connectNats, RunStateStore, sha256Digest } from '../../lib/transport/nats.ts';
import { chunkSubjects } from '../../lib/transport/checkpoint-push.ts';
import { NatsDisconnectedError } from '../../lib/transport/nats-disconnect.ts';

const shared = natsForFile('nats-disconnect-test');

/** Resolves at the connection's next status event of `type`. */
function nextStatus(nc: NatsConnection, type: 'disconnect' | 'reconnect'): Promise<void> {
  const it = nc.status();
  return (async () => {
    for await (const s of it) if (s.type === type) break;
  })();
}

// With the old code the put waited out its chunks' 30 s acknowledgement timeout and rejected with TIMEOUT: the test's
// timeout (well under 30 s) and the error's kind both fail it.
test('a put whose chunks are in flight when nats-server is killed -9 fails at the drop; its retry stores and announces it once', { timeout: 20_000 }, async () => {
  const nc = shared.nc;
  const store = await CheckpointStore.open(nc, { runId: 'run-k' });
  const bytes = randomBytes(24 * 1024 * 1024); // ~24 chunks of the test server's 1 MiB max_payload: a window in flight
  const digest = sha256Digest(bytes);
  // the server freezes as the first chunk reaches a subscriber: the acknowledgements of the chunks behind it never come
  let paused = false;
  const sub = nc.subscribe(chunkSubjects(store.bucket), {
    callback: () => {
      if (paused) return;
      paused = true;
      void shared.nats.pause();
    },
  });
  const put = store.put(7, bytes, digest);
  put.catch(() => {});
  while (!paused) await new Promise((r) => setTimeout(r, 5));
  sub.unsubscribe();
  const reconnected = nextStatus(nc, 'reconnect');
  await shared.nats.kill();
  await shared.nats.restart();
  await assert.rejects(put, (e: unknown) => {
    assert.ok(e instanceof NatsDisconnectedError, `expected a NatsDisconnectedError, got ${String(e)}`);
    assert.equal(e.code, 'DISCONNECT');
    assert.match(e.message, /^NATS request on \$O\.checkpoints-run-k\.C\.push\.[0-9a-f]+: the connection to .* dropped before the reply came/);
    return true;
  });
  await reconnected;
  // the retry after the reconnect stores it; a second retry only re-announces (de-duplicated by JetStream)
  const ann = await store.put(7, bytes, digest);
  assert.equal(ann.version, 7);
  await store.put(7, bytes, digest);
  const jsm = await nc.jetstreamManager();
  assert.equal((await jsm.streams.info(store.stream)).state.messages, 1, 'one announcement of v7');
  assert.equal((await store.latest())?.version, 7);
  const got = await store.get(7, { expectDigest: digest });
  assert.ok(Buffer.from(got.bytes).equals(bytes));
  // the failed attempt's chunks were purged: the bucket holds the stored object's chunks and its info only
  const info = await jsm.streams.info(`OBJ_${store.bucket}`);
  assert.equal(info.state.messages, Math.ceil(bytes.length / ((nc.info?.max_payload ?? 0) - 4096)) + 1);
});

// With the old code the request was queued while the connection was down and dropped when the client dialled again
// (nats.js resets its outbound buffer at each dial): TIMEOUT after the JetStream API's 5 s.
test('a request made while nats-server is down is sent once the connection is back', { timeout: 20_000 }, async () => {
  const nc = shared.nc;
  const store = await CheckpointStore.open(nc, { runId: 'run-d' });
  const bytes = randomBytes(1000);
  await store.put(3, bytes, sha256Digest(bytes));
  const dropped = nextStatus(nc, 'disconnect');
  await shared.nats.kill();
  await dropped;
  const latest = store.latest();
  await shared.nats.restart();
  assert.equal((await latest)?.version, 3);
});

// With the old code the write waited out its 5 s timeout (TIMEOUT); and nats.js's KV calls isJetStreamError() on what a
// request rejects with, so the error must be a NatsError (a plain Error made that a TypeError in the faults test).
test('a run-state write in flight when nats-server is killed -9 fails at the drop; the next write goes through', { timeout: 20_000 }, async () => {
  const nc = shared.nc;
  const state = await RunStateStore.open(nc, { runId: 'run-s', schema: z.object({ n: z.number() }) });
  const rev = await state.create({ n: 1 });
  await shared.nats.pause();
  const update = state.update({ n: 2 }, rev);
  update.catch(() => {});
  const reconnected = nextStatus(nc, 'reconnect');
  await shared.nats.kill();
  await shared.nats.restart();
  await assert.rejects(update, (e: unknown) => {
    assert.ok(e instanceof NatsDisconnectedError, `expected a NatsDisconnectedError, got ${String(e)}`);
    assert.match(e.message, /^NATS request on \$KV\.runstate-run-s\.state: the connection to .* dropped before the reply came/);
    return true;
  });
  await reconnected;
  // the update never reached the frozen server: the revision is still current
  assert.equal((await state.modify((v) => ({ n: v!.n + 1 }))).value.n, 2);
});

// A silent server (SIGSTOP: its TCP connections stay up, as over a cut link) is noticed by the PINGs: with nats.js's
// own 2 min interval the connection would wait minutes (the test's timeout fails it), and the requests on it their
// timeouts. Here the connection drops (disconnect), and reconnects once the server answers again.
test('a silent nats-server is noticed by the connection\'s PINGs: it drops and reconnects once the server is back', { timeout: 20_000 }, async () => {
  const nats = await startNatsServer();
  try {
    const nc = await connectNats({ url: nats.url, name: 'ping-test', pingIntervalMs: 200 });
    try {
      const dropped = nextStatus(nc, 'disconnect');
      await nats.pause();
      await dropped;
      const back = nextStatus(nc, 'reconnect');
      await nats.kill();
      await nats.restart();
      await back;
      await nc.flush();
    } finally {
      await nc.close();
    }
  } finally {
    await nats.stop();
  }
});

/**
 * Freezes (SIGSTOP) the server as the next read of `store`'s objects makes its consumer (seen by a second connection):
 * whatever of the read is under way then is lost. Resolves once frozen.
 */
async function freezeAtNextRead(nats: { url: string; pause(): Promise<void> }, bucket: string): Promise<{ frozen: Promise<void> }> {
  const spy = await connectNats({ url: nats.url, name: 'freeze-spy' });
  let froze!: () => void;
  const frozen = new Promise<void>((r) => (froze = r));
  const freeze = () => void nats.pause().then(froze);
  // a read of the chunks is a direct get per chunk (object-chunks.ts): frozen at the first
  spy.subscribe(`$JS.API.DIRECT.GET.OBJ_${bucket}`, { callback: freeze, max: 1 });
  await spy.flush();
  return { frozen: frozen.then(() => spy.close().catch(() => {})) };
}

// A checkpoint read (CheckpointStore.get from the store: a direct get per chunk; an ordered consumer before round 22) in flight when
// nats-server is frozen, killed -9 and restarted. The read must complete on the new connection. With the old code the
// ordered consumer re-created itself only after two of its 5 s idle heartbeats went missing (14 s after the restart:
// the test's 10 s timeout fails it), or, when the drop caught its consumer's creation, get() rejected with a
// CheckpointIntegrityError (a rollout worker then refused the version for good, a learner refused to resume).
test('a checkpoint read in flight when nats-server is killed -9 and restarted completes on the new connection', { timeout: 10_000 }, async () => {
  const nats = await startNatsServer();
  const nc = await connectNats({ url: nats.url, name: 'read-test' });
  try {
    const store = await CheckpointStore.open(nc, { runId: 'run-r', push: false });
    const bytes = randomBytes(16 * 1024 * 1024); // 16 chunks of the test server's 1 MiB max_payload
    const digest = sha256Digest(bytes);
    await store.put(5, bytes, digest);
    const { frozen } = await freezeAtNextRead(nats, store.bucket);
    const read = store.get(5, { expectDigest: digest });
    read.catch(() => {});
    await frozen;
    const reconnected = nextStatus(nc, 'reconnect');
    await nats.kill();
    await nats.restart();
    await reconnected;
    const got = await read;
    assert.ok(Buffer.from(got.bytes).equals(bytes), 'the bytes read are the checkpoint');
  } finally {
    await nc.close();
    await nats.stop();
  }
});

// A read that cannot complete (here the connection does not come back) says which checkpoint and why, and is not an
// integrity error: callers take that for "the bytes are wrong" (a follower refuses the version, a learner refuses to
// resume). With the old code it was a CheckpointIntegrityError.
test('a checkpoint read whose connection is lost fails naming the checkpoint, not as an integrity error', { timeout: 60_000 }, async () => {
  const nats = await startNatsServer();
  const nc = await connectNats({ url: nats.url, name: 'read-fail-test', maxReconnectAttempts: 0 });
  try {
    const store = await CheckpointStore.open(nc, { runId: 'run-f', push: false });
    const bytes = randomBytes(4 * 1024 * 1024);
    const digest = sha256Digest(bytes);
    await store.put(2, bytes, digest);
    const { frozen } = await freezeAtNextRead(nats, store.bucket);
    const read = store.get(2, { expectDigest: digest });
    read.catch(() => {});
    await frozen;
    await nats.kill();
    await assert.rejects(read, (e: unknown) => {
      assert.ok(!(e instanceof CheckpointIntegrityError), `not an integrity error: ${String(e)}`);
      assert.match((e as Error).message, /^checkpoint v2: reading checkpoints-run-f\/v0000000002 failed/);
      return true;
    });
  } finally {
    await nc.close().catch(() => {});
    await nats.stop();
  }
});

// A role's exit drains its NATS connection; a drain waits for the server, so against a silent server (SIGSTOP) it
// would never finish (the orchestrator's exit hung so before round 20). closeNats bounds it and closes.
test('closeNats ends a connection whose server is silent: the drain is cut at its bound and the connection closed', { timeout: 20_000 }, async () => {
  const nats = await startNatsServer();
  const conns: NatsConnection[] = [];
  try {
    const [a, b] = await Promise.all(['close-a', 'close-b'].map((name) => connectNats({ url: nats.url, name })));
    conns.push(a!, b!);
    for (const nc of [a!, b!]) {
      const sub = nc.subscribe(`${nc.info?.client_id ?? 'x'}.close-test`);
      void (async () => {
        for await (const _ of sub) void _;
      })();
    }
    await nats.pause();
    // b: a plain drain, what the orchestrator awaited before, is still waiting after a second
    const plain = await Promise.race([b!.drain().then(() => 'drained', () => 'failed'), new Promise((r) => setTimeout(() => r('waiting'), 1000))]);
    assert.equal(plain, 'waiting', 'a plain drain must wait on the silent server, or this test shows nothing');
    // a: closeNats returns (else the test's timeout fails it) with the connection closed
    await closeNats(a!, 300);
    await a!.closed();
    assert.equal(a!.isClosed(), true);
    await b!.close();
  } finally {
    // closed whatever failed above: a connection left open redials the killed server for ever and holds the test
    // file's process alive (CI hung so in round 26 when the precondition above failed under load)
    await nats.kill();
    for (const nc of conns) await nc.close().catch(() => undefined);
    await nats.stop().catch(() => undefined);
  }
});

// A stop after nats-server is gone (an in-process run whose server was stopped first): nats.js's drain swallows its
// flush's failure and resolves without closing, and the connection redialled for ever (maxReconnectAttempts -1), its
// reconnect timer holding the process alive after every stop() (round 24; seen as a process alive ~90 s after a run).
test('closeNats closes a connection whose server is gone: nothing of it keeps the process alive', { timeout: 30_000 }, async () => {
  const nats = await startNatsServer();
  const resources = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'TCPSocketWrap' || r === 'TCPWRAP' || r === 'ConnectWrap').length;
  const before = resources();
  const nc = await connectNats({ url: nats.url, name: 'gone' });
  const dropped = nextStatus(nc, 'disconnect');
  try {
    await nats.stop();
    await dropped; // reconnecting now
    await closeNats(nc, 2000);
    assert.equal(nc.isClosed(), true, 'the connection is closed, not left redialling');
    await nc.closed();
    // its redial timer and sockets go with it (the dial loop sees the close within a reconnect wait, 0.5 s)
    for (const t0 = Date.now(); Date.now() - t0 < 20_000 && resources() > before; ) await new Promise((r) => setTimeout(r, 50));
    assert.ok(resources() <= before, `no timer or socket of the connection left: ${JSON.stringify(process.getActiveResourcesInfo())}`);
  } finally {
    await nc.close().catch(() => undefined);
    await nats.stop();
  }
});
