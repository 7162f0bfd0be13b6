// PendingSends (lib/transport/pending-sends.ts): the sends a stream has not seen written, failed all at once when it
// ends. Deletes in any order, a second delete of the same entry does nothing, drain returns the rest oldest first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PendingSends } from '../../lib/transport/pending-sends.ts';

test('PendingSends: delete in any order, twice harmlessly; drain returns what is left, oldest first, and empties', () => {
  const p = new PendingSends<number>();
  const e = [0, 1, 2, 3, 4, 5].map((n) => p.add(n));
  p.delete(e[0]!); // the head
  p.delete(e[5]!); // the tail
  p.delete(e[2]!); // the middle
  p.delete(e[2]!); // again: nothing
  assert.equal(p.size, 3);
  assert.equal(e[2]!.prev, undefined, 'a removed entry points at nothing');
  assert.equal(e[2]!.next, undefined);
  p.add(6);
  assert.deepEqual(p.drain(), [1, 3, 4, 6]);
  assert.equal(p.size, 0);
  assert.deepEqual(p.drain(), []);
  p.delete(e[1]!); // after a drain: nothing
  assert.equal(p.size, 0);
  p.add(7);
  assert.deepEqual(p.drain(), [7]);
});
