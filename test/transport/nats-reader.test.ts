// A dropped connection's unparsed reads never reach the next connection's parser (lib/transport/nats-reader.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { natsForFile } from '../helpers/nats.ts';
import { connectNats } from '../../lib/transport/nats.ts';
import { leftoverReadsDropped } from '../../lib/transport/nats-reader.ts';

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
    const reply = await nc.request('reader.echo', new TextEncoder().encode('intact'), { timeout: 2000 });
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
