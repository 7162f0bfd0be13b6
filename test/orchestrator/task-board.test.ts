// TaskBoard: least-loaded dispatch within each worker's max_in_flight, re-dispatch when a worker leaves,
// give-up after maxAttempts, results only from the role that does the task, queue-depth gauges.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics } from '../../lib/metrics/index.ts';
import type { OrchestratorMessage, WorkerSession } from '../../lib/transport/index.ts';
import { TaskBoard, type Task } from '../../orchestrator/task-board.ts';

function session(id: string, role: 'ROLLOUT' | 'REWARD', maxInFlight: number) {
  const s = {
    id, role, workerId: id, isOpen: true, sent: [] as OrchestratorMessage[],
    hello: { capabilities: { device: 'cpu', max_batch: 1, max_in_flight: maxInFlight } },
    send: async (m: OrchestratorMessage) => void s.sent.push(m),
  };
  return s as unknown as WorkerSession & { sent: OrchestratorMessage[]; isOpen: boolean };
}

const task = (id: string, role: 'ROLLOUT' | 'REWARD' = 'ROLLOUT'): Task => ({
  id, role, attempt: 0,
  message: (attempt) => (role === 'ROLLOUT' ? { rollout_task: { task_id: id, attempt } } : { score_task: { task_id: id, attempt } }),
});

function board(onGiveUp: (t: Task, reason: string) => void = () => {}) {
  const metrics = createMetrics('tb', 'orchestrator');
  return { b: new TaskBoard({ leaseMs: 1000, maxAttempts: 3, metrics, onGiveUp }), metrics };
}

test('tasks go to the least-loaded worker with room; the rest wait in the queue', async () => {
  const { b, metrics } = board();
  const [a, c, d] = [session('a', 'ROLLOUT', 2), session('c', 'ROLLOUT', 2), session('d', 'ROLLOUT', 1)];
  for (const s of [a, c, d]) b.attach(s);
  for (let i = 0; i < 7; i++) b.add(task(`t${i}`));
  assert.deepEqual([a.sent.length, c.sent.length, d.sent.length], [2, 2, 1]);
  // the first three went one to each worker (least loaded first)
  assert.deepEqual([a, c, d].map((s) => s.sent[0]!.rollout_task!.task_id).sort(), ['t0', 't1', 't2']);
  assert.equal(b.pending, 7);
  const depth = async () => (await metrics.registry.getSingleMetric('recovery_grpo_queue_depth')!.get()).values.find((v) => v.labels.queue === 'rollout')!.value;
  assert.equal(await depth(), 2);
  // a completion frees room: the next queued task goes to that worker
  const done = b.complete(d, d.sent[0]!.rollout_task!.task_id!);
  assert.ok(done);
  assert.equal(d.sent.length, 2);
  assert.equal(await depth(), 1);
  // a reward task is not held up by full rollout workers
  const r = session('r', 'REWARD', 1);
  b.attach(r);
  b.add(task('s0', 'REWARD'));
  assert.equal(r.sent[0]!.score_task!.task_id, 's0');
});

test('a worker that leaves: its tasks go to others (attempt + 1); after maxAttempts the task is given up', () => {
  const given: string[] = [];
  const { b } = board((t, reason) => given.push(`${t.id}: ${reason}`));
  const [a, c] = [session('a', 'ROLLOUT', 1), session('c', 'ROLLOUT', 1)];
  b.attach(a);
  b.add(task('t0'));
  b.attach(c);
  a.isOpen = false;
  b.detach(a);
  assert.equal(c.sent[0]!.rollout_task!.attempt, 2);
  c.isOpen = false;
  b.detach(c);
  const e = session('e', 'ROLLOUT', 1);
  b.attach(e);
  assert.equal(e.sent[0]!.rollout_task!.attempt, 3);
  b.fail(e, 't0', 'internal', 'boom', true);
  assert.deepEqual(given, ['t0: internal: boom']);
  assert.equal(b.pending, 0);
  // a closed session is never picked, even before its detach arrives
  const f = session('f', 'ROLLOUT', 4);
  b.attach(f);
  f.isOpen = false;
  b.add(task('t1'));
  assert.equal(f.sent.length, 0);
  assert.equal(b.pending, 1);
});

test('results count only from the role that does the task, and only once', () => {
  const { b } = board();
  const a = session('a', 'ROLLOUT', 1);
  const r = session('r', 'REWARD', 1);
  b.attach(a);
  b.attach(r);
  b.add(task('t0'));
  assert.equal(b.complete(r, 't0'), undefined, 'a reward worker cannot complete a rollout task');
  assert.equal(b.complete(a, 'nope'), undefined);
  assert.ok(b.complete(a, 't0'));
  assert.equal(b.complete(a, 't0'), undefined, 'the second result is a duplicate');
});
