// lib/transport/nats-payload.ts: nats.js assembles a message that spans socket reads in one buffer of the message's
// size (not by doubling) or, for a subscription that asks for it, in the connection's reused scratch buffer; it
// writes a large payload without copying it; the bytes a subscriber gets are the ones published, headers included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { headers, type Msg } from 'nats';
import { natsForFile } from '../helpers/nats.ts';
import { connectNats } from '../../lib/transport/nats.ts';
import { isScratch, LARGE_WRITE, presizePayloads, receiveInScratch, releaseScratch, sendLargeUncopied } from '../../lib/transport/nats-payload.ts';

const shared = natsForFile();

test('a message larger than a socket read arrives intact, in a buffer of exactly its size', async () => {
  const pub = await connectNats({ url: shared.nats.url, name: 'payload-pub' });
  const sub = await connectNats({ url: shared.nats.url, name: 'payload-sub' });
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

test('a subscription in scratch: spanning messages share one reused buffer (bytes right inside the callback), a message it calls whole gets its own', async () => {
  const pub = await connectNats({ url: shared.nats.url, name: 'scratch-pub' });
  const sub = await connectNats({ url: shared.nats.url, name: 'scratch-sub' });
  try {
    const max = pub.info!.max_payload;
    const parts = [randomBytes(max - 4096), randomBytes(max - 8192), randomBytes(max - 4096)];
    const seen: Array<{ equal: boolean; scratch: boolean; buffer: ArrayBufferLike; hdr: string | undefined }> = [];
    const heads: number[] = [];
    const done = new Promise<void>((resolve) => {
      const s = sub.subscribe('scratch.>', {
        callback: (err, m) => {
          if (err) return;
          // compared before returning: the next spanning message overwrites a scratch buffer
          seen.push({ equal: Buffer.from(m.data).equals(parts[seen.length]!), scratch: isScratch(m.data), buffer: m.data.buffer, hdr: m.headers?.get('Part') });
          if (seen.length === parts.length) resolve();
        },
      });
      // the third message (header Part: keep) gets a buffer of its own
      assert.equal(receiveInScratch(sub, s, (head, hdrLen) => { heads.push(hdrLen); return hdrLen > 0 && Buffer.from(head.subarray(0, hdrLen)).toString('latin1').includes('Part: keep'); }), true);
    });
    await sub.flush();
    const h = (v: string) => { const x = headers(); x.set('Part', v); return x; };
    pub.publish('scratch.a', parts[0]!, { headers: h('a') });
    pub.publish('scratch.b', parts[1]!);
    pub.publish('scratch.c', parts[2]!, { headers: h('keep') });
    await pub.flush();
    await done;
    assert.deepEqual(seen.map((x) => x.equal), [true, true, true]);
    assert.deepEqual(seen.map((x) => x.scratch), [true, true, false]);
    assert.equal(seen[0]!.buffer, seen[1]!.buffer, 'the scratch buffer is reused');
    assert.notEqual(seen[2]!.buffer, seen[0]!.buffer);
    assert.equal(heads[1], -1, 'a message without headers is asked about with hdrLen -1');
    assert.equal(seen[0]!.hdr, 'a');
  } finally {
    await pub.close();
    await sub.close();
  }
});

test('releaseScratch: the subscription\'s messages get buffers of their own again', async () => {
  const pub = await connectNats({ url: shared.nats.url, name: 'release-pub' });
  const sub = await connectNats({ url: shared.nats.url, name: 'release-sub' });
  try {
    const big = randomBytes(pub.info!.max_payload - 4096);
    let scratch: boolean | undefined;
    const got = new Promise<void>((resolve) => {
      const s = sub.subscribe('release.x', { callback: (err, m) => { if (!err) { scratch = isScratch(m.data); resolve(); } } });
      receiveInScratch(sub, s, () => false);
      releaseScratch(sub, s);
    });
    await sub.flush();
    pub.publish('release.x', big);
    await got;
    assert.equal(scratch, false);
  } finally {
    await pub.close();
    await sub.close();
  }
});

test('a large payload is written as it is (no concatenated copy), small messages as before; the subscriber gets the same bytes', async () => {
  const pub = await connectNats({ url: shared.nats.url, name: 'send-pub' });
  const sub = await connectNats({ url: shared.nats.url, name: 'send-sub' });
  try {
    assert.equal(sendLargeUncopied(pub), true);
    // the frames handed to the socket, seen through the connection's own transport
    const transport = (pub as unknown as { protocol: { transport: { send(f: Uint8Array): void } } }).protocol.transport;
    const sent: Uint8Array[] = [];
    const send = transport.send.bind(transport);
    transport.send = (f: Uint8Array) => { sent.push(f); send(f); };
    const got: Buffer[] = [];
    const done = new Promise<void>((resolve) => {
      sub.subscribe('send.>', { callback: (err, m) => { if (!err) got.push(Buffer.from(m.data)); if (got.length === 3) resolve(); } });
    });
    await sub.flush();
    const big = randomBytes(LARGE_WRITE * 3 + 5);
    const small = randomBytes(100);
    const h = headers();
    h.set('X', 'y');
    pub.publish('send.small', small);
    pub.publish('send.big', big, { headers: h });
    pub.publish('send.small2', small);
    await pub.flush();
    await done;
    assert.deepEqual(got, [small, big, small]);
    assert.ok(sent.some((f) => f === big), 'the payload itself was handed to the socket');
    assert.ok(sent.every((f) => f === big || f.length < LARGE_WRITE), 'nothing else large was written');
  } finally {
    await pub.close();
    await sub.close();
  }
});

// nats.js's reader loop ends at a parse error but keeps the socket: the connection stayed "connected" and deaf until
// its PINGs went unanswered (the test's timeout fails the old code). Now it drops and reconnects at once.
test('a parse error drops the connection and it reconnects, instead of staying connected with nothing reading it', { timeout: 10_000 }, async () => {
  const nc = await connectNats({ url: shared.nats.url, name: 'parse-error-test', pingIntervalMs: 120_000 });
  try {
    const statuses: string[] = [];
    const reconnected = (async () => {
      for await (const s of nc.status()) {
        statuses.push(s.type);
        if (s.type === 'reconnect') break;
      }
    })();
    const parser = (nc as unknown as { protocol: { parser: { parse(b: Uint8Array): void } } }).protocol.parser;
    // bytes where the parser expects an operation: what a reply's payload looks like when the stream is out of step
    assert.throws(() => parser.parse(new TextEncoder().encode('{"type":"io.nats.jetstream.api.v1.stream_msg_get_response"}\r\n')), /parse error/);
    await reconnected;
    assert.ok(statuses.includes('disconnect'), `statuses: ${statuses.join(', ')}`);
    // the new connection works: a request-reply round trip
    const sub = nc.subscribe('parse-error.echo', { callback: (_e, m) => m.respond(m.data) });
    assert.equal(new TextDecoder().decode((await nc.request('parse-error.echo', new TextEncoder().encode('hi'), { timeout: 20_000 })).data), 'hi');
    sub.unsubscribe();
  } finally {
    await nc.close();
  }
});
