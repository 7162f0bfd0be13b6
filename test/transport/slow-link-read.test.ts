// A reader on a slow link still reads a large checkpoint from the store (a late joiner, a missed push). Round 22 read
// chunks by direct gets with a flat 5 s per request, and a 7.5 MB chunk at 10 Mbit/s (6 s) failed every time; the
// limit now follows the chunk's size (object-chunks.ts MIN_READ_BYTES_PER_MS). The link is a TCP proxy on 127.0.0.1
// that passes the server's bytes at 10 Mbit/s (from round 22's review probe).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';
import { CheckpointStore, connectNats, sha256Digest } from '../../lib/transport/nats.ts';

const BYTES_PER_S = 10e6 / 8;
let nats: TestNatsServer | undefined;
let proxy: net.Server | undefined;
after(async () => {
  proxy?.close();
  await nats?.stop();
});

/** A proxy to `port` whose server-to-client bytes pass at BYTES_PER_S (a token bucket ticking every 10 ms). */
async function slowProxy(port: number): Promise<{ url: string; stop: () => void }> {
  const queues = new Set<{ out: net.Socket; up: net.Socket; bufs: Buffer[] }>();
  const tick = setInterval(() => {
    let budget = (BYTES_PER_S * 10) / 1000;
    for (const q of queues) {
      while (budget > 0 && q.bufs.length) {
        const b = q.bufs[0]!;
        const n = Math.min(b.length, budget);
        q.out.write(b.subarray(0, n));
        budget -= n;
        if (n === b.length) q.bufs.shift();
        else q.bufs[0] = b.subarray(n);
      }
      if (q.bufs.reduce((s, b) => s + b.length, 0) < 1 << 20) q.up.resume();
    }
  }, 10);
  proxy = net.createServer((out) => {
    const up = net.connect(port, '127.0.0.1');
    const q = { out, up, bufs: [] as Buffer[] };
    queues.add(q);
    out.pipe(up);
    up.on('data', (d: Buffer) => {
      q.bufs.push(d);
      if (q.bufs.reduce((s, b) => s + b.length, 0) > 4 << 20) up.pause();
    });
    const end = () => {
      queues.delete(q);
      out.destroy();
      up.destroy();
    };
    for (const s of [out, up]) {
      s.on('error', end);
      s.on('close', end);
    }
  });
  await new Promise<void>((r) => proxy!.listen(0, '127.0.0.1', r));
  return { url: `nats://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`, stop: () => clearInterval(tick) };
}

test('a 7.5 MB checkpoint (one chunk) is read from the store over a 10 Mbit/s link', { timeout: 60_000 }, async () => {
  nats = await startNatsServer({ maxPayload: 8 * 1024 * 1024 });
  const writer = await connectNats({ url: nats.url, name: 'slow-link-writer' });
  const link = await slowProxy(Number(new URL(nats.url).port));
  const reader = await connectNats({ url: link.url, name: 'slow-link-reader' });
  try {
    const learner = await CheckpointStore.open(writer, { runId: 'slow' });
    const bytes = randomBytes(7_500_000);
    await learner.put(1, bytes, sha256Digest(bytes));
    const store = await CheckpointStore.open(reader, { runId: 'slow' });
    const got = await store.get(1, { expectDigest: sha256Digest(bytes) });
    assert.equal(got.bytes.length, bytes.length);
  } finally {
    await reader.close();
    await writer.close();
    link.stop();
  }
});
