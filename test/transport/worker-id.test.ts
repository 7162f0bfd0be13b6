// The worker id `__proto__` is refused wherever a worker id is read (review29 F8): the run state keeps records keyed by
// worker id (quarantineWindows, boundIds), and a JSON record parse drops that key, so that id's quarantine window
// started from zero at every orchestrator restart (zod's record parse skips a `__proto__` key without an error, so the
// run-state schema cannot refuse it). Every entry point names the id and the rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { certificateGrant, parseRoleTokens, validateHello, type Hello__Output } from '../../lib/transport/index.ts';
import { resolveWorkerOptions } from '../../lib/worker/options.ts';

const RULE = /not be "__proto__"/;
const hello = (worker_id: string): Hello__Output => ({ protocol_version: 1, role: 'ROLLOUT' as const, worker_id, capabilities: { device: 'cpu', max_batch: 1, max_in_flight: 1, max_tasks_per_message: 0, tensor_dtypes: [], labels: {} }, software_version: 'test' });

test('the worker id __proto__ is refused, naming it, at the Hello, the role-token file, the certificate and the worker options', () => {
  assert.throws(() => validateHello(hello('__proto__')), (e: Error) => /hello\.worker_id: must match/.test(e.message) && RULE.test(e.message));
  assert.throws(() => parseRoleTokens('rollout __proto__ 0123456789abcdef0123', 'tokens.txt'), (e: Error) => /^tokens\.txt:1: worker id "__proto__" must be \* or match/.test(e.message) && RULE.test(e.message));
  assert.throws(() => certificateGrant('URI:spiffe://recovery-grpo/role/rollout/__proto__'), (e: Error) => /worker id "__proto__"/.test(e.message) && RULE.test(e.message));
  assert.throws(() => resolveWorkerOptions('rollout', { workerId: '__proto__' }, {}), (e: Error) => /workerId: must match/.test(e.message) && RULE.test(e.message));
  // ids that only contain it are ids like any other
  for (const id of ['__proto__x', 'x__proto__', '__proto', 'proto', 'constructor']) assert.equal(validateHello(hello(id)).worker_id, id);
});
