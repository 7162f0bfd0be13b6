// A dropped connection's unparsed reads never reach the next connection's parser, and an abandoned dial's end does
// not drop the connection in use (lib/transport/nats-reader.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, natsForFile } from '../helpers/nats.ts';
import { connectNats } from '../../lib/transport/nats.ts';
import { SERVER_PING_CONF, spawnNatsServer } from '../../lib/transport/nats-server.ts';
import { leftoverReadsDropped } from '../../lib/transport/nats-reader.ts';
import { waitFor } from '../roles/helpers.ts';

const shared = natsForFile();

interface TransportInternals {
  yields: Uint8Array[];
  signal: { resolve(): void };
}
const transportOf = (nc: unknown) => (nc as { protocol: { transport: TransportInternals } }).protocol.transport;

// With the old code the read was parsed by the new connection's parser: the message header made it take the next 64
// bytes of the new stream (the flush's PONG and more) as a payload, the flush never completed (the test's timeout).
// This connection is the process's FIRST (keep this test first in the file): a guard put in place only after a
// connection was made missed that connection's transport, which is the only one most roles ever make.
test('a read that reaches a replaced connection\'s reader after the reconnect is not parsed by the new connection', { timeout: 10_000 }, async () => {
  const nc = await connectNats({ url: shared.nats.url, name: 'reader-leftover', pingIntervalMs: 120_000 });
  try {
    const old = transportOf(nc);
    const statuses: string[] = [];
    const reconnected = (async () => {
      for await (const s of nc.status()) {
        statuses.push(s.type);
        if (s.type === 'reconnect') break;
      }
    })();
    // a client-initiated drop, as when PINGs go unanswered
    await nc.reconnect();
    await reconnected;
    assert.notEqual(transportOf(nc), old, 'a new transport');
    // a read that the old socket brought in late: the start of a message whose payload is still to come
    old.yields.push(Buffer.from('MSG leftover.subject 1 64\r\n'));
    old.signal.resolve();
    await new Promise((r) => setImmediate(r));
    await nc.flush();
    const sub = nc.subscribe('reader.echo', { callback: (_e, m) => m.respond(m.data) });
    const reply = await nc.request('reader.echo', new TextEncoder().encode('intact'), { timeout: 20_000 });
    assert.equal(new TextDecoder().decode(reply.data), 'intact');
    sub.unsubscribe();
    assert.equal(statuses.filter((s) => s === 'disconnect').length, 1, `statuses: ${statuses.join(', ')}`);
  } finally {
    await nc.close();
  }
});

test('the guard is in place: nats.js\'s transport and parser classes were found and patched when the module loaded', () => {
  assert.equal(leftoverReadsDropped, true);
});

/**
 * A TCP proxy to 127.0.0.1:`port` that can be cut as a link is: while cut, what the open connections carry is
 * dropped, and a new connection is held: accepted, nothing forwarded (as a handshake that cannot get through) until
 * heal() connects it on, late, as TCP's retransmitted handshake does once the link is back.
 */
async function cuttableProxy(port: number) {
  let cut = false;
  const held: (() => void)[] = [];
  const open = new Set<Socket>();
  const server = createServer((client) => {
    open.add(client);
    client.on('close', () => open.delete(client));
    client.on('error', () => client.destroy());
    const forward = () => {
      if (client.destroyed) return;
      const up = connect(port, '127.0.0.1');
      client.on('data', (d) => void (cut || up.write(d)));
      up.on('data', (d) => void (cut || client.write(d)));
      for (const s of [client, up]) s.on('close', () => (client.destroy(), up.destroy())).on('error', () => s.destroy());
    };
    if (cut) held.push(forward);
    else forward();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `nats://127.0.0.1:${(server.address() as { port: number }).port}`,
    cut: () => void (cut = true),
    heal: () => {
      cut = false;
      for (const f of held.splice(0)) f();
    },
    held: () => held.length,
    close: () => {
      server.close();
      for (const c of open) c.destroy();
    },
  };
}

/** The test server's wait for a connection's CONNECT (nats-server's default: 2 s). */
const AUTH_TIMEOUT_S = 0.5;


// A dial during a cut times out (no INFO) and the next one replaces it, but nats.js ignored the close of a transport
// that had not connected: once the link was back its socket connected unused, the server closed it (no CONNECT within
// its authorization timeout, here 0.5 s), and that end dropped the connection then in use. Round 20's fault c runs saw
// every role dropped again 3-4 s after the recovery; on the old code this test sees that second disconnect.
test('dials abandoned during a cut that get through after it do not drop the connection that replaced them', { timeout: 30_000 }, async () => {
  const storeDir = mkdtempSync(join(tmpdir(), 'nats-orphan-'));
  const conf = join(storeDir, 'auth.conf');
  writeFileSync(conf, `authorization { user: u, password: p, timeout: ${AUTH_TIMEOUT_S} }\n${SERVER_PING_CONF}\n`);
  const server = await spawnNatsServer({ port: await freePort(), storeDir, extraArgs: ['-c', conf] });
  const proxy = await cuttableProxy(Number(new URL(server.url).port));
  const nc = await connectNats({ url: proxy.url, name: 'orphan-dials', user: 'u', pass: 'p', pingIntervalMs: 200, timeoutMs: 500 });
  try {
    const statuses: string[] = [];
    void (async () => {
      for await (const s of nc.status()) statuses.push(s.type);
    })();
    proxy.cut();
    await waitFor(() => statuses.includes('disconnect') && proxy.held() >= 2, 'the drop (unanswered PINGs) and two dials held by the cut');
    proxy.heal();
    await waitFor(() => statuses.includes('reconnect'), 'the reconnect');
    const after = statuses.length;
    // the abandoned dials get through now: before, the server ended each one after its authorization timeout
    await new Promise((r) => setTimeout(r, 3 * AUTH_TIMEOUT_S * 1000));
    await nc.flush();
    const later = statuses.slice(after).filter((s) => s !== 'pingTimer');
    assert.deepEqual(later, [], `a drop after the reconnect: ${later.join(', ')}`);
  } finally {
    await nc.close();
    proxy.close();
    await server.stop();
    rmSync(storeDir, { recursive: true, force: true });
  }
});
