// withTimeout (lib/async/with-timeout.ts): the value when the promise settles in time, 'timeout' when not, a
// rejection passed through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withTimeout } from '../../lib/async/with-timeout.ts';

test('withTimeout: the value in time, \'timeout\' when late, a rejection passed through', async () => {
  assert.equal(await withTimeout(Promise.resolve(7), 1000), 7);
  assert.equal(await withTimeout(new Promise<number>((r) => setTimeout(() => r(1), 300)), 20), 'timeout');
  await assert.rejects(withTimeout(Promise.reject(new Error('refused')), 1000), /refused/);
});
