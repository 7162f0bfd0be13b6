// A worker notices a dead stream by itself: keepalive pings go unanswered when the orchestrator's side goes silent
// (here a relay that black-holes bytes while keeping the TCP connection open, as a cut link or a hung peer
// does), the stream ends with UNAVAILABLE and withReconnect dials again. Before round 19 the ping interval was
// 30 s (+10 s timeout): the test's own timeout (20 s) is shorter than that, so the old code fails it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startOrchestratorServer, type WorkerSession } from '../../lib/transport/grpc-server.ts';
import { connectToOrchestrator, withReconnect, type ConnectOptions } from '../../lib/transport/grpc-client.ts';
import { TransportError } from '../../lib/transport/errors.ts';
import { startDelayRelay, type RelayProcess } from '../faults/relay-process.ts';

const worker = (address: string, extra: Partial<ConnectOptions> = {}): ConnectOptions => ({
  address,
  role: 'ROLLOUT',
  workerId: 'rollout-1',
  capabilities: { device: 'cpu', max_batch: 8, max_in_flight: 1 },
  connectTimeoutMs: 2000,
  ...extra,
});

/** A server that welcomes every worker and hands each session to the test in order. */
async function welcomingServer() {
  const sessions: WorkerSession[] = [];
  const waiters: Array<(s: WorkerSession) => void> = [];
  const server = await startOrchestratorServer({
    heartbeatTimeoutMs: 0, // the server's own watchdog stays out of it: only the worker's keepalive may end the stream
    onConnect: async (s) => {
      await s.send({ welcome: { run_id: 'run-k', config_json: '{}', heartbeat_interval_ms: 0 } });
      const w = waiters.shift();
      if (w) w(s);
      else sessions.push(s);
    },
  });
  const nextSession = () => (sessions.length ? Promise.resolve(sessions.shift()!) : new Promise<WorkerSession>((r) => waiters.push(r)));
  return { server, nextSession };
}

test('a stream whose orchestrator side goes silent ends with UNAVAILABLE (unanswered keepalive) and the worker reconnects', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keepalive-'));
  const delayFile = join(dir, 'delay');
  writeFileSync(delayFile, '0');
  const { server, nextSession } = await welcomingServer();
  let relay: RelayProcess | undefined;
  try {
    relay = await startDelayRelay(server.port, delayFile);
    const address = `127.0.0.1:${relay.port}`;
    const failures: unknown[] = [];
    let firstFailure!: (e: unknown) => void;
    const failed = new Promise<unknown>((r) => (firstFailure = r));
    const done = withReconnect(
      async () => {
        const conn = await connectToOrchestrator(worker(address, { keepaliveMs: 200, keepaliveTimeoutMs: 1000 }));
        for await (const m of conn.messages) {
          if (m.kind === 'shutdown') {
            await conn.close();
            return m.shutdown!.reason;
          }
        }
        throw new Error('stream ended without shutdown');
      },
      {
        initialDelayMs: 50,
        maxDelayMs: 200,
        onRetry: ({ error }) => {
          failures.push(error);
          if (failures.length === 1) firstFailure(error);
        },
      },
    );
    const first = await nextSession();
    assert.ok(first.isOpen);

    // Black hole: every byte either way is held for 10 minutes; the TCP connections stay up.
    writeFileSync(delayFile, String(600_000));
    const error = await failed;
    assert.ok(error instanceof TransportError, `the dead stream ended with a TransportError, got ${String(error)}`);
    assert.equal(error.code, grpc.status.UNAVAILABLE, `UNAVAILABLE, got ${error.message}`);
    assert.ok(error.retryable);

    // The link is back: the worker is welcomed on a new stream.
    writeFileSync(delayFile, '0');
    const second = await nextSession();
    assert.notEqual(second.id, first.id);
    await second.send({ shutdown: { reason: 'run finished', grace_ms: 0 } });
    assert.equal(await done, 'run finished');
  } finally {
    relay?.stop();
    await server.close({ graceMs: 200 });
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pings every 50 ms on a healthy stream do not get it dropped: the grpc-js server permits them', { timeout: 20_000 }, async () => {
  const { server, nextSession } = await welcomingServer();
  try {
    const conn = await connectToOrchestrator(worker(server.address, { keepaliveMs: 50, keepaliveTimeoutMs: 5000 }));
    const session = await nextSession();
    let ended = false;
    void conn.closed.then(() => (ended = true));
    await new Promise((r) => setTimeout(r, 1500)); // ~30 pings
    assert.equal(ended, false, 'the stream is still open');
    assert.ok(session.isOpen);
    await session.send({ shutdown: { reason: 'bye', grace_ms: 0 } });
    for await (const m of conn.messages) if (m.kind === 'shutdown') break;
    await conn.close();
  } finally {
    await server.close({ graceMs: 200 });
  }
});

test('keepalive options out of range are refused, naming the option', async () => {
  await assert.rejects(connectToOrchestrator(worker('127.0.0.1:1', { keepaliveMs: -1 })), /keepaliveMs must be an integer >= 0/);
  await assert.rejects(connectToOrchestrator(worker('127.0.0.1:1', { keepaliveTimeoutMs: 0 })), /keepaliveTimeoutMs must be a positive integer/);
});
