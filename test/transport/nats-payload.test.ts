// lib/transport/nats-payload.ts: nats.js assembles a message that spans socket reads in one buffer of the message's
// size (not by doubling), and the bytes a subscriber gets are the ones published, headers included.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { headers, type Msg } from 'nats';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';
import { connectNats } from '../../lib/transport/nats.ts';
import { presizePayloads } from '../../lib/transport/nats-payload.ts';

let nats: TestNatsServer;
before(async () => {
  nats = await startNatsServer();
});
after(async () => {
  await nats?.stop();
});

test('a message larger than a socket read arrives intact, in a buffer of exactly its size', async () => {
  const pub = await connectNats({ url: nats.url, name: 'payload-pub' });
  const sub = await connectNats({ url: nats.url, name: 'payload-sub' });
  try {
    // connectNats applies it; the internals it needs are where nats.js keeps them (false would mean an upgrade moved them)
    assert.equal(presizePayloads(sub), true);
    const got: Msg[] = [];
    const done = new Promise<void>((resolve) => {
      sub.subscribe('payload.>', { callback: (err, m) => { if (!err) got.push(m); if (got.length === 4) resolve(); } });
    });
    await sub.flush();
    const max = pub.info!.max_payload;
    const big = randomBytes(max - 4096);
    const small = randomBytes(1000);
    const h = headers();
    h.set('Ckpt-Offset', '12345');
    pub.publish('payload.big', big);
    pub.publish('payload.small', small);
    pub.publish('payload.big-headers', big, { headers: h });
    pub.publish('payload.big-again', big.subarray(1));
    await pub.flush();
    await done;
    const [m1, m2, m3, m4] = got as [Msg, Msg, Msg, Msg];
    assert.deepEqual(Buffer.from(m1.data), big);
    assert.deepEqual(Buffer.from(m2.data), small);
    assert.deepEqual(Buffer.from(m3.data), big);
    assert.equal(m3.headers?.get('Ckpt-Offset'), '12345');
    assert.deepEqual(Buffer.from(m4.data), big.subarray(1));
    // assembled once: the payload's memory is the message (headers + payload) and no more; nats.js alone grows it
    // by doubling to ~2x the size
    assert.equal(m1.data.buffer.byteLength, big.length);
    assert.ok(m3.data.buffer.byteLength < big.length + 200, `with headers: ${m3.data.buffer.byteLength} bytes for ${big.length}`);
  } finally {
    await pub.close();
    await sub.close();
  }
});
