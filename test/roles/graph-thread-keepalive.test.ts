// A role's long graph calls and its keepalive (docs/reliability.md, "Dead streams"): on the calling thread a graph
// call holds the event loop, so a keepalive ping sent just before it is answered only after it, and a call longer
// than the keepalive timeout drops a healthy stream. In a worker thread (--graph-thread on; auto from a session's
// first long call on) the loop reads the answer while the graph runs, and the stream lives through calls far longer than the timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphSession } from '../../lib/graph/runtime.ts';
import { policyModel } from '../../lib/models/bundle.ts';
import { policyCase } from '../helpers/policy-case.ts';
import { startOrchestratorServer } from '../../lib/transport/grpc-server.ts';
import { connectToOrchestrator } from '../../lib/transport/grpc-client.ts';

const KEEPALIVE = { keepaliveMs: 50, keepaliveTimeoutMs: 150 };
const CALLS = 3;

/**
 * Back-to-back policy calls of several hundred ms each (144 px, batch 32, one thread per operator, so that the other
 * core keeps the event loop running), as a busy rollout worker makes them.
 */
async function longCalls(thread: 'on' | 'off' | 'auto'): Promise<{ dropped: boolean; slowestMs: number }> {
  const { config, feeds } = policyCase(144, 32);
  const session = await GraphSession.create(policyModel(config), { thread, intraOpThreads: 1 });
  const server = await startOrchestratorServer({
    heartbeatTimeoutMs: 0, // only the worker's keepalive may end the stream
    onConnect: async (s) => {
      await s.send({ welcome: { run_id: 'run-g', config_json: '{}', heartbeat_interval_ms: 0 } });
    },
  });
  const conn = await connectToOrchestrator({
    address: `127.0.0.1:${server.port}`,
    role: 'ROLLOUT',
    workerId: 'rollout-g',
    capabilities: { device: 'cpu', max_batch: 8, max_in_flight: 1 },
    connectTimeoutMs: 2000,
    ...KEEPALIVE,
  });
  let dropped = false;
  const reading = (async () => {
    try {
      for await (const _ of conn.messages) void _;
    } catch {
      dropped = true;
    }
    dropped = true; // the stream ended without a Shutdown: the keepalive dropped it
  })();
  let slowestMs = 0;
  try {
    await session.run(feeds); // warm-up (the arena)
    for (let i = 0; i < CALLS && !dropped; i++) {
      const t0 = performance.now();
      await session.run(feeds);
      slowestMs = Math.max(slowestMs, performance.now() - t0);
    }
    await new Promise((r) => setTimeout(r, 3 * KEEPALIVE.keepaliveTimeoutMs)); // a drop after the last call shows too
  } finally {
    const wasDropped = dropped;
    await conn.close().catch(() => {});
    await server.close();
    await reading;
    await session.release();
    dropped = wasDropped;
  }
  return { dropped, slowestMs };
}

test('graph calls in a worker thread, each longer than the keepalive timeout, leave the stream up', { timeout: 60_000 }, async () => {
  const r = await longCalls('on');
  assert.ok(r.slowestMs > KEEPALIVE.keepaliveTimeoutMs, `the calls must outlast the keepalive timeout (${KEEPALIVE.keepaliveTimeoutMs} ms) to test anything; the slowest took ${r.slowestMs.toFixed(0)} ms`);
  assert.equal(r.dropped, false, 'the stream was dropped during graph calls in a worker thread');
});

test('the same calls on the calling thread drop the healthy stream (what --no-graph-thread risks)', { timeout: 60_000 }, async () => {
  const r = await longCalls('off');
  assert.ok(r.slowestMs > KEEPALIVE.keepaliveTimeoutMs, `the slowest call took ${r.slowestMs.toFixed(0)} ms`);
  assert.equal(r.dropped, true, 'the stream lived through calls that held the event loop past the keepalive timeout');
});
