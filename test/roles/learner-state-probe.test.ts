// stateBucketOf (lib/worker/learner-state.ts): which bucket holds a run's moments is read from the answer to a purge
// that matches nothing. Only an answer tells; a probe that failed otherwise (a timeout, a dropped connection) must not
// pick the shared bucket, whose writes a grant naming the run refuses for ever (review25e). The answered cases run on
// a real nats-server in test/transport/nats-run-grants.test.ts; the failures here are injected into the one request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JetStreamManager } from 'nats';
import { stateBucketOf } from '../../lib/worker/learner-state.ts';

const answering = (purge: () => Promise<unknown>) => ({ streams: { purge } }) as unknown as JetStreamManager;

test('a permission refusal picks the run\'s own bucket, stream not found the shared one, anything else is thrown', async () => {
  assert.equal(await stateBucketOf(answering(async () => { throw new Error("Permissions Violation for Publish to \"$JS.API.STREAM.PURGE.OBJ_learner-state\""); }), 'run-r'), 'learner-state-run-r');
  assert.equal(await stateBucketOf(answering(async () => { throw Object.assign(new Error('stream not found'), { api_error: { err_code: 10059 } }); }), 'run-r'), 'learner-state');
  assert.equal(await stateBucketOf(answering(async () => ({ success: true, purged: 0 })), 'run-r'), 'learner-state');
  for (const failure of [Object.assign(new Error('TIMEOUT'), { code: 'TIMEOUT' }), Object.assign(new Error('disconnected'), { code: 'DISCONNECT' }), Object.assign(new Error('503'), { code: '503' })]) {
    await assert.rejects(stateBucketOf(answering(async () => { throw failure; }), 'run-r'), /cannot tell which bucket holds run run-r's optimizer state \(its grants probe failed/);
  }
});
