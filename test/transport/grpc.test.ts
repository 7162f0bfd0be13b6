import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startOrchestratorServer, type OrchestratorServerOptions, type WorkerSession } from '../../lib/transport/grpc-server.ts';
import { backoffDelay, connectToOrchestrator, withReconnect, type ConnectOptions } from '../../lib/transport/grpc-client.ts';
import { TransportError } from '../../lib/transport/errors.ts';
import { CONNECT_PATH, deserializeResponse, serializeRequest } from '../../lib/transport/grpc-common.ts';
import { decodeTensor, encodeTensor } from '../../lib/transport/tensor.ts';
import { resolveRolloutItems } from '../../lib/transport/messages.ts';
import type { OrchestratorMessage__Output, WorkerMessage } from '../../lib/transport/proto.ts';

const TOKEN = 'test-secret-token';
const worker = (address: string, extra: Partial<ConnectOptions> = {}): ConnectOptions => ({
  address,
  role: 'ROLLOUT',
  workerId: 'rollout-1',
  capabilities: { device: 'cpu', max_batch: 8, max_in_flight: 1 },
  token: TOKEN,
  connectTimeoutMs: 3000,
  ...extra,
});

/** A server whose onConnect welcomes every worker and hands the session to the test. */
async function welcomingServer(extra: Partial<OrchestratorServerOptions> = {}) {
  const sessions: WorkerSession[] = [];
  const waiters: Array<(s: WorkerSession) => void> = [];
  const server = await startOrchestratorServer({
    auth: { token: TOKEN },
    onConnect: async (s) => {
      await s.send({ welcome: { run_id: 'run-t', config_json: '{"g":8}', policy_version: 3, heartbeat_interval_ms: 0 } });
      const w = waiters.shift();
      if (w) w(s);
      else sessions.push(s);
    },
    ...extra,
  });
  const nextSession = () => (sessions.length ? Promise.resolve(sessions.shift()!) : new Promise<WorkerSession>((r) => waiters.push(r)));
  return { server, nextSession };
}

/** Raw stream without the client library, to break the protocol on purpose. */
function rawStream(address: string, token: string | undefined, first?: WorkerMessage) {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  const call = client.makeBidiStreamRequest(CONNECT_PATH, serializeRequest, deserializeResponse, md, {});
  const status = new Promise<grpc.StatusObject>((resolve) => {
    call.on('status', (s) => resolve(s));
    call.on('error', () => {});
    call.on('data', () => {});
  });
  if (first) call.write(first);
  return { call, status: status.finally(() => client.close()) };
}

async function expectTransportError(p: Promise<unknown>, code: grpc.status, pattern?: RegExp): Promise<TransportError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof TransportError, `expected TransportError, got ${e}`);
    assert.equal(e.code, code, `expected ${grpc.status[code]}, got ${e.message}`);
    if (pattern) assert.match(e.message, pattern);
    return e;
  }
  assert.fail('expected a TransportError');
}

test('hello -> welcome -> task -> result -> heartbeat -> clean close', async () => {
  const { server, nextSession } = await welcomingServer();
  try {
    const conn = await connectToOrchestrator(
      worker(server.address, { heartbeatMs: 30, heartbeat: () => ({ active_task_ids: ['t-1'], policy_version: 3 }), hello: { policy_version: 3 } }),
    );
    assert.equal(conn.welcome.run_id, 'run-t');
    assert.equal(conn.welcome.protocol_version, 1);
    assert.equal(conn.welcome.policy_version, 3);
    const session = await nextSession();
    assert.equal(session.role, 'ROLLOUT');
    assert.equal(session.workerId, 'rollout-1');
    assert.equal(session.hello.policy_version, 3);
    assert.equal(conn.welcome.session_id, session.id);

    const image = encodeTensor({ dtype: 'float32', shape: [3, 2, 2], data: Float32Array.from({ length: 12 }, (_, i) => i / 12) });
    await session.send({
      rollout_task: {
        task_id: 't-1',
        attempt: 1,
        lease_ms: 5000,
        policy_version_min: 3,
        items: [
          { sample_id: 's-1', group_index: 0, noise_seed: '18446744073709551615', image },
          { sample_id: 's-1', group_index: 1, noise_seed: '7' },
        ],
      },
    });
    const it = conn.messages[Symbol.asyncIterator]();
    const { value: msg } = (await it.next()) as { value: OrchestratorMessage__Output };
    assert.equal(msg.kind, 'rollout_task');
    const task = msg.rollout_task!;
    assert.equal(task.policy_version_min, 3);
    const items = resolveRolloutItems(task);
    assert.equal(items[0]!.noise_seed, '18446744073709551615'); // uint64 is lossless
    assert.equal(items[1]!.image, items[0]!.image); // shared image
    assert.deepEqual(Array.from(items[1]!.image.data), Array.from(decodeTensor(image).data));

    await conn.send({
      rollout_result: {
        task_id: 't-1',
        attempt: 1,
        policy_version: 3,
        items: items.map((x) => ({ sample_id: x.sample_id, group_index: x.group_index, action: image, logp: -1.25 })),
      },
    });
    const seen: string[] = [];
    for await (const m of session.messages) {
      seen.push(m.kind!);
      if (m.kind === 'rollout_result') {
        assert.equal(m.rollout_result!.items.length, 2);
        assert.equal(m.rollout_result!.items[1]!.logp, -1.25);
        assert.equal(m.rollout_result!.items[1]!.mean, null);
      }
      if (m.kind === 'heartbeat') {
        assert.deepEqual(m.heartbeat!.active_task_ids, ['t-1']);
        assert.ok(m.heartbeat!.seq >= 1);
        if (seen.includes('rollout_result')) break;
      }
    }
    await conn.close();
    const end = await session.closed;
    assert.equal(end.code, grpc.status.OK);
    assert.equal(end.by, 'remote');
    assert.equal((await conn.closed).code, grpc.status.OK);
    assert.equal(session.isOpen, false);
    await assert.rejects(conn.send({ heartbeat: { seq: 1 } }), TransportError);
  } finally {
    await server.close();
  }
});

test('token is checked on every stream: missing or wrong token is UNAUTHENTICATED (not retryable)', async () => {
  const { server } = await welcomingServer();
  try {
    const e = await expectTransportError(connectToOrchestrator(worker(server.address, { token: 'wrong' })), grpc.status.UNAUTHENTICATED, /Bearer/);
    assert.equal(e.retryable, false);
    await expectTransportError(connectToOrchestrator(worker(server.address, { token: undefined })), grpc.status.UNAUTHENTICATED);
    assert.equal(server.sessions().length, 0);
  } finally {
    await server.close();
  }
});

test('protocol violations are refused with a clear status', async () => {
  const { server } = await welcomingServer({ helloTimeoutMs: 150 });
  try {
    const notHello = rawStream(server.address, TOKEN, { heartbeat: { seq: 1 } });
    let s = await notHello.status;
    assert.equal(s.code, grpc.status.INVALID_ARGUMENT);
    assert.match(s.details, /first message on Orchestrator.Connect must be hello, got heartbeat/);

    const badHello = rawStream(server.address, TOKEN, { hello: { protocol_version: 1, role: 'ROLE_UNSPECIFIED', worker_id: 'has space', capabilities: { device: 'cpu', max_batch: 1 } } });
    s = await badHello.status;
    assert.equal(s.code, grpc.status.INVALID_ARGUMENT);
    assert.match(s.details, /hello\.role: must be one of ROLLOUT, REWARD, LEARNER/);
    assert.match(s.details, /hello\.worker_id: must match/);

    const noCaps = rawStream(server.address, TOKEN, { hello: { protocol_version: 1, role: 'REWARD', worker_id: 'r1' } });
    s = await noCaps.status;
    assert.match(s.details, /hello\.capabilities: capabilities are required/);

    const oldProto = rawStream(server.address, TOKEN, { hello: { protocol_version: 0, role: 'REWARD', worker_id: 'r1', capabilities: { device: 'cpu', max_batch: 1 } } });
    s = await oldProto.status;
    assert.equal(s.code, grpc.status.FAILED_PRECONDITION);
    assert.match(s.details, /protocol_version 0 is not supported/);

    const silent = rawStream(server.address, TOKEN);
    s = await silent.status;
    assert.equal(s.code, grpc.status.DEADLINE_EXCEEDED);
    assert.match(s.details, /no hello within 150 ms/);

    // a second hello on an accepted stream
    const conn = await connectToOrchestrator(worker(server.address));
    await assert.rejects(conn.send({ hello: { worker_id: 'x' } }), /hello is sent by connectToOrchestrator/);
    await assert.rejects(conn.send({}), /exactly one of/);
    await conn.close();
  } finally {
    await server.close();
  }
});

test('orchestrator must welcome first; onConnect failure is INTERNAL', async () => {
  let sendError: unknown;
  const server = await startOrchestratorServer({
    auth: { token: TOKEN },
    onConnect: async (s) => {
      if (s.workerId === 'boom') throw new Error('no room for you');
      await s.send({ shutdown: { reason: 'x' } }).catch((e) => (sendError = e));
      await s.send({ welcome: { run_id: 'r' } });
    },
    onError: () => {},
  });
  try {
    const conn = await connectToOrchestrator(worker(server.address));
    assert.match(String(sendError), /first message on a session must be welcome/);
    await conn.close();
    await expectTransportError(connectToOrchestrator(worker(server.address, { workerId: 'boom' })), grpc.status.INTERNAL, /no room for you/);
  } finally {
    await server.close();
  }
});

test('message size limits: oversize sends are refused locally, oversize receives end the stream', async () => {
  const { server, nextSession } = await welcomingServer({ maxMessageBytes: 64 * 1024 });
  try {
    const conn = await connectToOrchestrator(worker(server.address, { maxMessageBytes: 64 * 1024 }));
    const session = await nextSession();
    const big = encodeTensor({ dtype: 'float32', shape: [3, 100, 100], data: new Float32Array(30000) });
    await assert.rejects(conn.send({ score_result: { task_id: 'x', ssim_map: big } }), /score_result message is \d+ bytes, over the 65536-byte message limit/);
    await assert.rejects(session.send({ score_task: { task_id: 'x', candidates: big } }), /score_task message is \d+ bytes/);
    // both streams are still usable
    await session.send({ cancel_task: { task_id: 'x', reason: 'test' } });
    const it = conn.messages[Symbol.asyncIterator]();
    assert.equal(((await it.next()).value as OrchestratorMessage__Output).kind, 'cancel_task');
    await conn.send({ task_error: { task_id: 'x', code: 'bad_input', message: 'm', retryable: false } });
    const sit = session.messages[Symbol.asyncIterator]();
    assert.equal((await sit.next()).value?.kind, 'task_error');
    await conn.close();

    // a peer that ignores the limit: the server refuses the message with RESOURCE_EXHAUSTED
    const rogue = rawStream(server.address, TOKEN, { hello: { protocol_version: 1, role: 'REWARD', worker_id: 'rogue', capabilities: { device: 'cpu', max_batch: 1 } } });
    await nextSession();
    rogue.call.write({ score_result: { task_id: 'x', ssim_map: big } });
    const s = await rogue.status;
    assert.equal(s.code, grpc.status.RESOURCE_EXHAUSTED);
  } finally {
    await server.close();
  }
});

test('heartbeat timeout closes a silent session; the worker sees DEADLINE_EXCEEDED', async () => {
  const { server, nextSession } = await welcomingServer({ heartbeatTimeoutMs: 150 });
  try {
    const conn = await connectToOrchestrator(worker(server.address, { heartbeatMs: 60_000 }));
    const session = await nextSession();
    const end = await session.closed;
    assert.equal(end.code, grpc.status.DEADLINE_EXCEEDED);
    assert.match(end.details, /heartbeat timeout/);
    const e = await expectTransportError((async () => { for await (const _ of conn.messages); })(), grpc.status.DEADLINE_EXCEEDED);
    assert.equal(e.retryable, true);
    await conn.close();
  } finally {
    await server.close();
  }
  // A worker that heartbeats stays connected, three timeouts long. Server and worker share this process: a loaded
  // machine that does not run it for longer than the timeout drops the session whatever the heartbeats (seen at
  // 500 ms under three busy loops), so a window in which the event loop stalled that long shows nothing and is tried
  // again (at most 5 windows); a drop in a window without such a stall fails the test, as without heartbeats.
  const slack = await welcomingServer({ heartbeatTimeoutMs: 500 });
  try {
    const windows: string[] = [];
    let open: boolean | undefined;
    for (let i = 0; i < 5 && open === undefined; i++) {
      const watch = stallWatch();
      const live = await connectToOrchestrator(worker(slack.server.address, { heartbeatMs: 30 }));
      const s2 = await slack.nextSession();
      await new Promise((r) => setTimeout(r, 1500));
      const stallMs = watch.stop();
      if (s2.isOpen) open = true;
      else if (stallMs < 400) open = false;
      windows.push(`${s2.isOpen ? 'open' : 'dropped'} (longest stall ${stallMs.toFixed(0)} ms)`);
      await live.close();
    }
    assert.equal(open, true, `a heart-beating worker's session: ${windows.join(', ')}`);
  } finally {
    await slack.server.close();
  }
});

/** Watches the event loop until stop(): the longest time between two turns of a 10 ms interval (a stalled process). */
function stallWatch(): { stop(): number } {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 10);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(longest, performance.now() - last);
    },
  };
}

test('server close ends streams with UNAVAILABLE; withReconnect rides it out', async () => {
  const port = await freePort();
  let { server } = await welcomingServer({ listen: `127.0.0.1:${port}` });
  const retries: number[] = [];
  let runs = 0;
  const done = withReconnect(
    async (attempt) => {
      runs = attempt;
      const conn = await connectToOrchestrator(worker(`127.0.0.1:${port}`));
      for await (const m of conn.messages) {
        if (m.kind === 'shutdown') {
          await conn.close();
          return m.shutdown!.reason;
        }
      }
      throw new Error('stream ended without shutdown');
    },
    { initialDelayMs: 20, maxDelayMs: 100, onRetry: ({ delayMs }) => retries.push(delayMs) },
  );
  await waitFor(() => server.sessions().length === 1);
  await server.close();
  await waitFor(() => retries.length >= 2); // UNAVAILABLE on the open stream, then refused dials
  ({ server } = await welcomingServer({ listen: `127.0.0.1:${port}` }));
  await waitFor(() => server.sessions().length === 1);
  await server.sessions()[0]!.send({ shutdown: { reason: 'run finished', grace_ms: 0 } });
  assert.equal(await done, 'run finished');
  assert.ok(runs >= 3);
  await server.close();

  // non-retryable errors are thrown at once
  await assert.rejects(
    withReconnect(async () => {
      throw new TransportError(grpc.status.UNAUTHENTICATED, 'no');
    }),
    /UNAUTHENTICATED/,
  );
  assert.equal(backoffDelay(1, { initialDelayMs: 100 }), 100);
  assert.equal(backoffDelay(4, { initialDelayMs: 100 }), 800);
  assert.equal(backoffDelay(40, { initialDelayMs: 100, maxDelayMs: 5000 }), 5000);
});

test('refuses a non-loopback address without auth, and bad options', async () => {
  const onConnect = () => {};
  await assert.rejects(startOrchestratorServer({ listen: '0.0.0.0:0', onConnect }), /refusing to listen on 0\.0\.0\.0:0 without authentication/);
  await assert.rejects(startOrchestratorServer({ listen: '[::]:0', onConnect }), /refusing to listen/);
  await assert.rejects(startOrchestratorServer({ listen: '0.0.0.0:0', onConnect, auth: { tls: { cert: 'x', key: 'y' } } }), /refusing to listen/);
  await assert.rejects(startOrchestratorServer({ listen: 'nonsense', onConnect }), /listen "nonsense" must look like host:port/);
  await assert.rejects(startOrchestratorServer({ onConnect, auth: { token: ' ' } }), /auth.token is empty/);
  await assert.rejects(startOrchestratorServer({ onConnect, auth: { tls: { cert: 'x', key: 'y', requireClientCert: true } } }), /needs auth.tls.ca/);
});

test('mutual TLS: a client without a certificate is refused, one with a signed certificate gets in', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tls-'));
  try {
    try {
      makeCerts(dir);
    } catch (e) {
      t.skip(`openssl unavailable: ${(e as Error).message}`);
      return;
    }
    const { server, nextSession } = await welcomingServer({
      auth: { token: TOKEN, tls: { cert: join(dir, 'server.crt'), key: join(dir, 'server.key'), ca: join(dir, 'ca.crt'), requireClientCert: true } },
    });
    try {
      await assert.rejects(connectToOrchestrator(worker(server.address, { tls: { ca: join(dir, 'ca.crt'), serverName: 'localhost' } })), TransportError);
      const conn = await connectToOrchestrator(
        worker(server.address, { tls: { ca: join(dir, 'ca.crt'), cert: join(dir, 'client.crt'), key: join(dir, 'client.key'), serverName: 'localhost' } }),
      );
      const s = await nextSession();
      assert.equal(s.workerId, 'rollout-1');
      await conn.close();
    } finally {
      await server.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function makeCerts(dir: string): void {
  const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ossl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=test-ca', '-days', '1');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const who of ['server', 'client']) {
    ossl('req', ...ec, '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=${who}`);
    ossl('x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${who}.crt`, '-days', '1', '-extfile', `${who}.ext`);
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out waiting for a condition');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('several tasks per message: a TaskBundle reaches the worker as separate tasks; results sent in one turn travel as one ResultBundle', async () => {
  const { server, nextSession } = await welcomingServer({ maxResultsPerMessage: 8 });
  try {
    const conn = await connectToOrchestrator(worker(server.address, { capabilities: { device: 'cpu', max_batch: 8, max_in_flight: 4, max_tasks_per_message: 3 } }));
    assert.equal(conn.welcome.max_results_per_message, 8);
    const session = await nextSession();
    assert.equal(session.hello.capabilities.max_tasks_per_message, 3);
    const image = encodeTensor({ dtype: 'float32', shape: [3, 2, 2], data: new Float32Array(12).fill(0.5) });
    const rt = (id: string) => ({ task_id: id, attempt: 1, lease_ms: 1000, items: [{ sample_id: id, group_index: 0, noise_seed: '1', image }] });
    // more than the worker asked for, or an empty bundle, is refused before anything is sent
    await assert.rejects(session.send({ task_bundle: { rollout_tasks: ['a', 'b', 'c', 'd'].map(rt) } }), /4 tasks, but it asked for at most 3/);
    await assert.rejects(session.send({ task_bundle: { rollout_tasks: [] } }), /0 tasks/);
    await session.send({ task_bundle: { rollout_tasks: ['a', 'b', 'c'].map(rt) } });
    const it = conn.messages[Symbol.asyncIterator]();
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { value } = (await it.next()) as { value: OrchestratorMessage__Output };
      assert.equal(value.kind, 'rollout_task');
      assert.equal(resolveRolloutItems(value.rollout_task!)[0]!.image.data[0], 0.5);
      got.push(value.rollout_task!.task_id);
    }
    assert.deepEqual(got, ['a', 'b', 'c']);
    // three results and an error in the same turn: one ResultBundle (8 allowed), handed out one by one, in order
    const result = (id: string) => ({ rollout_result: { task_id: id, attempt: 1, policy_version: 0, items: [{ sample_id: id, group_index: 0, action: image, logp: -1 }] } });
    await Promise.all([conn.send(result('a')), conn.send(result('c')), conn.send({ task_error: { task_id: 'b', attempt: 1, code: 'internal', message: 'x', retryable: true } }), conn.send(result('b2'))]);
    const seen: string[] = [];
    for await (const m of session.messages) {
      if (m.kind === 'heartbeat') continue;
      seen.push(`${m.kind}:${m.rollout_result?.task_id ?? m.task_error?.task_id}`);
      if (seen.length === 4) break;
    }
    assert.deepEqual(seen, ['rollout_result:a', 'rollout_result:c', 'rollout_result:b2', 'task_error:b']);
    await conn.close();
  } finally {
    await server.close();
  }
});

test('a worker that does not ask for several gets no TaskBundle; an empty or oversized ResultBundle ends the stream (INVALID_ARGUMENT)', async () => {
  const { server, nextSession } = await welcomingServer({ maxResultsPerMessage: 2 });
  try {
    const conn = await connectToOrchestrator(worker(server.address));
    const session = await nextSession();
    const rt = { task_id: 'a', attempt: 1, lease_ms: 1000, items: [] };
    await assert.rejects(session.send({ task_bundle: { rollout_tasks: [rt] } }), /asked for one per message/);
    await conn.close();
    const hello: WorkerMessage = { hello: { protocol_version: 1, role: 'ROLLOUT', worker_id: 'raw', capabilities: { device: 'cpu', max_batch: 1 } } };
    for (const [bundle, pattern] of [
      [{}, /result_bundle: is empty/],
      [{ task_errors: ['x', 'y', 'z'].map((id) => ({ task_id: id, code: 'internal' })) }, /holds 3 results, over the 2/],
    ] as const) {
      const raw = rawStream(server.address, TOKEN, hello);
      const s = await nextSession();
      raw.call.write({ result_bundle: bundle });
      const st = await raw.status;
      assert.equal(st.code, grpc.status.INVALID_ARGUMENT);
      assert.match(st.details, pattern);
      assert.equal((await s.closed).code, grpc.status.INVALID_ARGUMENT);
    }
  } finally {
    await server.close();
  }
});
