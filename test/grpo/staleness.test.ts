import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dispatchStaleness, mayDispatch } from '../../lib/grpo/staleness.ts';

test('dispatch rule: batch seq lags at most seq - (ackedSeq + 1) versions', () => {
  assert.equal(dispatchStaleness(5, 4), 0);
  assert.equal(dispatchStaleness(7, 4), 2);
  assert.throws(() => dispatchStaleness(4, 4), /must be an integer after the acknowledged 4/);
  assert.throws(() => dispatchStaleness(1.5, 0), /must be an integer/);
});

test('maxStaleness 0 is synchronous: only the batch right after the acknowledged one is dispatched', () => {
  assert.equal(mayDispatch(5, 4, 0), true);
  assert.equal(mayDispatch(6, 4, 0), false);
  // maxStaleness 2: up to three batches in flight
  assert.deepEqual([5, 6, 7, 8].map((s) => mayDispatch(s, 4, 2)), [true, true, true, false]);
});
