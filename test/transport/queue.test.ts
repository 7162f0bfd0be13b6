// AsyncQueue's synchronous consumer (consume / forEachItem), against the for-await consumer it stands in for: the
// same items in the same order, buffered ones first, the end or its error, a handler's throw, one consumer only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncQueue, forEachItem } from '../../lib/transport/queue.ts';

test('consume: buffered items first, then each push synchronously, in order; resolves at the end', async () => {
  let lows = 0;
  const q = new AsyncQueue<number>({ highWater: 2, onLow: () => lows++ });
  q.push(1);
  q.push(2); // at high water: the producer was paused
  const seen: number[] = [];
  const done = q.consume((n) => seen.push(n));
  assert.deepEqual(seen, [1, 2]);
  assert.equal(lows, 1, 'draining the buffer resumes the producer');
  q.push(3);
  assert.deepEqual(seen, [1, 2, 3], 'a push is delivered before push returns');
  q.end();
  await done;
  q.push(4);
  assert.deepEqual(seen, [1, 2, 3]);
});

test('consume: an ended queue delivers what it holds and then its error, as for-await does', async () => {
  const q = new AsyncQueue<string>();
  q.push('a');
  q.end(new Error('stream broke'));
  const seen: string[] = [];
  await assert.rejects(q.consume((s) => seen.push(s)), /stream broke/);
  assert.deepEqual(seen, ['a']);
  const later = new AsyncQueue<string>();
  const p = later.consume((s) => seen.push(s));
  later.end(new Error('later'));
  await assert.rejects(p, /later/);
});

test('consume: a handler that throws stops delivery and rejects; one consumer per queue', async () => {
  const q = new AsyncQueue<number>();
  const seen: number[] = [];
  const done = q.consume((n) => {
    if (n === 2) throw new Error('bad item 2');
    seen.push(n);
  });
  q.push(1);
  q.push(2);
  q.push(3);
  await assert.rejects(done, /bad item 2/);
  assert.deepEqual(seen, [1]);
  await assert.rejects(q.consume(() => {}), /has a consumer already/);
  const it = new AsyncQueue<number>();
  it[Symbol.asyncIterator]();
  await assert.rejects(it.consume(() => {}), /has a consumer already/);
});

test('forEachItem: the same items through consume (an AsyncQueue) and through iteration (any AsyncIterable)', async () => {
  const q = new AsyncQueue<number>();
  const viaQueue: number[] = [];
  const a = forEachItem(q, (n) => viaQueue.push(n));
  for (const n of [5, 6, 7]) q.push(n);
  q.end();
  await a;
  async function* gen() { yield 5; yield 6; yield 7; }
  const viaIteration: number[] = [];
  await forEachItem(gen(), (n) => viaIteration.push(n));
  assert.deepEqual(viaQueue, [5, 6, 7]);
  assert.deepEqual(viaIteration, viaQueue);
});
