// A WorkerSession that records what the coordinator under test sends it (the coordinator's unit tests talk to these
// instead of gRPC streams), and `until`, their wait for what the coordinator does next.
import assert from 'node:assert/strict';
import type { OrchestratorMessage, SessionCredential, WorkerSession } from '../../lib/transport/index.ts';

export type FakeSession = WorkerSession & { sent: OrchestratorMessage[] };

/**
 * `credential`: what authenticated the session (WorkerSession.credential); default none, a loopback session without
 * authentication (the task board's voter is then the worker id, id-bindings binds nothing).
 */
export function fakeSession(role: 'ROLLOUT' | 'REWARD' | 'LEARNER', workerId: string, credential: SessionCredential = { kind: 'none', id: 'none', pinned: false }): FakeSession {
  const sent: OrchestratorMessage[] = [];
  return {
    id: workerId, role, workerId, peer: 'fake', connectedAt: 0, lastSeen: 0, isOpen: true, credential,
    hello: { protocol_version: 1, role, worker_id: workerId, software_version: '', capabilities: { device: 'cpu', max_batch: 64, max_in_flight: 4, max_tasks_per_message: 0, tensor_dtypes: [], labels: {} } },
    messages: { [Symbol.asyncIterator]: () => ({ next: () => new Promise(() => {}) }) },
    send: async (m: OrchestratorMessage) => void sent.push(m),
    end() {}, fail() {},
    closed: new Promise(() => {}),
    sent,
  };
}

/** Waits (up to ~5 s, in 5 ms steps) until `cond()` holds, then asserts it, naming `what`. */
export async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(cond(), what);
}
