// lib/transport/flow-window.ts: the orchestrator's server and the workers' channels offer HTTP/2 windows of
// FLOW_WINDOW_BYTES (per stream in SETTINGS, per connection by WINDOW_UPDATE), so a message of a few hundred KB goes
// out in one write while its sender's event loop is held by a graph call. The server side sets grpc-js internals:
// this test is what notices when an upgrade moves them (widenServerWindows then returns false).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { startOrchestratorServer } from '../../lib/transport/grpc-server.ts';
import { connectToOrchestrator } from '../../lib/transport/grpc-client.ts';
import { FLOW_WINDOW_BYTES } from '../../lib/transport/flow-window.ts';

const DEFAULT_WINDOW = 65_535;

test('the orchestrator server offers a stream and a connection window of FLOW_WINDOW_BYTES', async () => {
  const server = await startOrchestratorServer({ onConnect: async () => {} });
  const client = http2.connect(`http://${server.address}`);
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('remoteSettings', () => resolve());
      client.once('error', reject);
    });
    assert.equal(client.remoteSettings.initialWindowSize, FLOW_WINDOW_BYTES);
    // the connection window arrives as a WINDOW_UPDATE right after the SETTINGS
    const deadline = Date.now() + 20_000;
    while ((client.state.remoteWindowSize ?? 0) <= DEFAULT_WINDOW && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok((client.state.remoteWindowSize ?? 0) >= FLOW_WINDOW_BYTES, `connection window ${client.state.remoteWindowSize}`);
  } finally {
    client.destroy();
    await server.close({ graceMs: 100 });
  }
});

test("a worker's channel offers the orchestrator a stream and a connection window of FLOW_WINDOW_BYTES", async () => {
  // A bare HTTP/2 server in the orchestrator's place: it reads the worker's SETTINGS and window, then refuses.
  const seen = new Promise<{ initial: number | undefined; connection: number | undefined }>((resolve) => {
    const h2 = http2.createServer();
    h2.on('session', (session) => {
      session.once('remoteSettings', (settings) => {
        const initial = settings.initialWindowSize;
        // the connection window comes as a WINDOW_UPDATE after the SETTINGS: read once it has (at most 20 s), not
        // after a fixed 100 ms
        const t0 = Date.now();
        const read = () => {
          if ((session.state.remoteWindowSize ?? 0) <= DEFAULT_WINDOW && Date.now() - t0 < 20_000) return void setTimeout(read, 10);
          resolve({ initial, connection: session.state.remoteWindowSize });
          session.destroy();
          h2.close();
        };
        read();
      });
    });
    h2.listen(0, '127.0.0.1', () => {
      const port = (h2.address() as { port: number }).port;
      void connectToOrchestrator({ address: `127.0.0.1:${port}`, role: 'ROLLOUT', workerId: 'w', capabilities: { device: 'cpu', max_batch: 8, max_in_flight: 1 }, connectTimeoutMs: 1000 }).then(
        (c) => c.close(),
        () => undefined,
      );
    });
  });
  const { initial, connection } = await seen;
  assert.equal(initial, FLOW_WINDOW_BYTES);
  assert.ok((connection ?? 0) >= FLOW_WINDOW_BYTES, `connection window ${connection}`);
});
