// The delaying TCP relay the network-fault suite uses where the kernel has no netem (delay-relay.ts), on
// loopback (no namespaces needed): bytes pass through unchanged; with a delay set, none arrives before it has
// passed; the delay can be changed while the connection stays open, and a shorter delay never lets later bytes
// overtake earlier ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startDelayRelay, type RelayProcess } from './relay-process.ts';

test('the delay relay forwards bytes in order, each no earlier than the delay set when it was sent', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'relay-'));
  const delayFile = join(dir, 'delay');
  writeFileSync(delayFile, '0');
  // the target: echoes every byte back
  const echo = createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  let relay: RelayProcess | undefined;
  let client: Socket | undefined;
  try {
    relay = await startDelayRelay((echo.address() as AddressInfo).port, delayFile);
    const c = connect(relay.port, '127.0.0.1');
    client = c;
    await new Promise<void>((r) => c.once('connect', r));
    const got: { text: string; at: number }[] = [];
    c.on('data', (d: Buffer) => got.push({ text: d.toString(), at: Date.now() }));
    const until = async (text: string) => {
      while (!got.map((g) => g.text).join('').includes(text)) await new Promise((r) => setTimeout(r, 10));
      return got.find((g) => g.text.includes(text))!.at;
    };

    // no delay: through unchanged
    c.write('plain|');
    await until('plain|');

    // 150 ms each way: the echo comes back no earlier than 300 ms after it was sent
    writeFileSync(delayFile, '150');
    await relay.delaySet(150); // the relay polls the file every 100 ms: its line says when it has the delay
    const sent = Date.now();
    c.write('slow|');
    const back = await until('slow|');
    assert.ok(back - sent >= 300, `a 150 ms delay each way: echoed after ${back - sent} ms`);

    // bytes sent under a long delay are not overtaken by bytes sent after it was lifted
    writeFileSync(delayFile, '500');
    await relay.delaySet(500);
    c.write('first|');
    writeFileSync(delayFile, '0');
    await relay.delaySet(0);
    c.write('second|');
    await until('second|');
    const all = got.map((g) => g.text).join('');
    assert.equal(all, 'plain|slow|first|second|', 'every byte, in the order sent');
  } finally {
    client?.destroy();
    relay?.stop();
    echo.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
