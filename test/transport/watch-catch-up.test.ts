// A watcher's catch-up after a reconnect (lib/transport/nats.ts catchUpLatest): retried while latest() throws,
// and a failure that outlasts the retries is reported, never swallowed (it once was: `.catch(() => null)`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { catchUpLatest, type Announcement } from '../../lib/transport/nats.ts';

const ann = { run_id: 'r', version: 7, name: 'v7', digest: 'sha256:x', size: 1, meta: {}, published_unix_ms: 0 } as unknown as Announcement;

test('catch-up: a read that fails twice and then succeeds returns the announcement and reports nothing', async () => {
  let calls = 0;
  const errors: Error[] = [];
  const got = await catchUpLatest(async () => { if (++calls < 3) throw new Error('timeout'); return ann; }, () => false, (e) => errors.push(e), [1, 1]);
  assert.equal(got, ann);
  assert.equal(calls, 3);
  assert.deepEqual(errors, []);
});

test('catch-up: a read that keeps failing is tried once more per delay, then reported with its cause', async () => {
  let calls = 0;
  const errors: Error[] = [];
  const got = await catchUpLatest(async () => { calls++; throw new Error('no responders'); }, () => false, (e) => errors.push(e), [1, 1]);
  assert.equal(got, null);
  assert.equal(calls, 3);
  assert.equal(errors.length, 1);
  assert.match(errors[0].message, /failed 3 time\(s\): no responders/);
});

test('catch-up: a stopped watcher does not retry', async () => {
  let calls = 0;
  const errors: Error[] = [];
  await catchUpLatest(async () => { calls++; throw new Error('closed'); }, () => true, (e) => errors.push(e), [1, 1]);
  assert.equal(calls, 1);
  assert.equal(errors.length, 1);
});
