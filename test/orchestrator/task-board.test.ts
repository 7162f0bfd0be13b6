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

test('leases run on the board\'s monotonic clock: renewed by heartbeats, never past maxTaskMs; the wall clock plays no part', () => {
  const metrics = createMetrics('tb-clock', 'orchestrator');
  let now = 1_000; // the monotonic clock the board reads (performance.now in the orchestrator)
  const b = new TaskBoard({ leaseMs: 100, maxTaskMs: 250, maxAttempts: 3, metrics, onGiveUp: () => {}, now: () => now });
  const a = session('a', 'ROLLOUT', 1);
  b.attach(a);
  b.add(task('t0'));
  now += 90;
  b.renew(a, ['t0']); // lease now runs to 1190
  now += 90;
  b.expireLeases();
  assert.equal(a.sent.filter((m) => m.cancel_task).length, 0, 'a renewed lease does not expire');
  // a heartbeat from another worker listing the task renews nothing
  const c = session('c', 'ROLLOUT', 1);
  b.attach(c);
  b.renew(c, ['t0']);
  now += 20; // 1200 > 1190
  b.expireLeases();
  assert.equal(a.sent.at(-1)!.cancel_task?.reason, 'lease expired');
  assert.equal(c.sent[0]!.rollout_task!.task_id, 't0');
  // c renews every 90 ms: the lease holds until the task's 250 ms total, then it is taken back
  const dispatched = now;
  let cancelled = -1;
  for (let i = 0; i < 10 && cancelled < 0; i++) {
    now += 90;
    b.expireLeases();
    if (c.sent.some((m) => m.cancel_task)) cancelled = now - dispatched;
    b.renew(c, ['t0']);
  }
  assert.equal(cancelled, 270, 'taken back at the first check past 250 ms');
  assert.equal(c.sent.find((m) => m.cancel_task)!.cancel_task!.reason, 'task time limit reached');
});

test('max_in_flight from a Hello is capped by maxInFlight; error codes outside the fixed set count as other', async () => {
  const metrics = createMetrics('tb-cap', 'orchestrator');
  const b = new TaskBoard({ leaseMs: 1000, maxInFlight: 3, maxAttempts: 3, metrics, onGiveUp: () => {} });
  const greedy = session('g', 'ROLLOUT', 1_000_000);
  b.attach(greedy);
  for (let i = 0; i < 10; i++) b.add(task(`t${i}`));
  assert.equal(greedy.sent.length, 3);
  b.fail(greedy, 'nobody-holds-this', 'x'.repeat(100), 'm', true);
  b.fail(greedy, 't0', 'made-up', 'm', true);
  b.fail(greedy, 't1', 'internal', 'm', true);
  const codes = (await metrics.registry.getSingleMetric('recovery_grpo_task_errors_total')!.get()).values.map((v) => `${v.labels.code}=${v.value}`).sort();
  assert.deepEqual(codes, ['internal=1', 'other=1']);
});
