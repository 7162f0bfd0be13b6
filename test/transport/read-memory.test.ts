// lib/transport/read-memory.ts: past SCAVENGE_EVERY bytes received, one minor GC is scheduled (not more while it is
// pending), it frees dead young buffers (what a large message's socket reads are once parsed), and V8's gc is had
// without exposing it to the program.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getHeapSpaceStatistics } from 'node:v8';
import { noteReceived, SCAVENGE_EVERY, settleYoungGeneration, v8Gc } from '../../lib/transport/read-memory.ts';

const nextMacrotask = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

test('V8 gc is had without --expose-gc, and not left exposed', () => {
  assert.equal(typeof v8Gc(), 'function');
  assert.equal((globalThis as { gc?: unknown }).gc, undefined);
});

test('a scavenge is scheduled once past SCAVENGE_EVERY bytes, and it frees dead young buffers', async () => {
  // 2 MiB in young buffers that nothing references once this job ends, as a large message's socket reads
  const reads = (): number => Array.from({ length: 32 }, () => Buffer.allocUnsafeSlow(64 * 1024)).length;
  assert.equal(reads(), 32);
  const held = process.memoryUsage().arrayBuffers;
  await nextMacrotask();
  assert.equal(noteReceived(SCAVENGE_EVERY / 2), false, 'below the threshold nothing is scheduled');
  assert.equal(noteReceived(SCAVENGE_EVERY / 2), true, 'at the threshold a scavenge is scheduled');
  assert.equal(noteReceived(SCAVENGE_EVERY), false, 'not a second one while the first is pending');
  await new Promise<void>((resolve) => setImmediate(resolve));
  // V8 frees the dead buffers' memory on a background thread after the scavenge
  for (const t0 = Date.now(); Date.now() - t0 < 20_000 && process.memoryUsage().arrayBuffers > held - 2 ** 20; ) await new Promise((r) => setTimeout(r, 10));
  assert.ok(process.memoryUsage().arrayBuffers <= held - 2 ** 20, `the scavenge freed the dead buffers (${held} -> ${process.memoryUsage().arrayBuffers} bytes)`);
  // the count starts again after the scavenge
  assert.equal(noteReceived(SCAVENGE_EVERY - 1), false);
  assert.equal(noteReceived(1), true);
  await new Promise<void>((resolve) => setImmediate(resolve));
});

/** Bytes in V8's young generation (new space) now. */
const youngBytes = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_used_size;

test('settleYoungGeneration: once per process, what is alive in the young generation is promoted', () => {
  // ~1-2 MB of small live objects in the young generation, as a process's start leaves. Allocated until new space
  // holds 800 kB: V8 sizes new space by the allocation rate it measured, and after a slow stretch (a loaded
  // machine) a scavenge could come in the middle of a fixed 2 MB and promote most of it (seen: 402 kB left of it)
  const alive: Array<{ i: number; s: string; a: number[] }> = [];
  for (let n = 0; youngBytes() < 800_000 && n < 200; n++) for (let i = 0; i < 1000; i++) alive.push({ i, s: `object ${i}`, a: [i, i + 1] });
  assert.ok(youngBytes() > 800_000, `the objects are young (${youngBytes()} bytes in new space)`);
  assert.equal(settleYoungGeneration(), true);
  // one scavenge only copies them within the young generation; the second promotes them
  assert.ok(youngBytes() < 200_000, `promoted: ${youngBytes()} bytes left in new space`);
  assert.ok(alive.length >= 1000);
  assert.equal(settleYoungGeneration(), false, 'not again');
});
