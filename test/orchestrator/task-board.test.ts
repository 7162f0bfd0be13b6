// TaskBoard: least-loaded dispatch within each worker's max_in_flight, re-dispatch when a worker leaves,
// give-up after maxAttempts, results only from the role that does the task, queue-depth gauges.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics } from '../../lib/metrics/index.ts';
import type { OrchestratorMessage, WorkerSession } from '../../lib/transport/index.ts';
import { newTaskId, TaskBoard, type Task } from '../../orchestrator/task-board.ts';
import { TaskQueue } from '../../orchestrator/task-queue.ts';

function session(id: string, role: 'ROLLOUT' | 'REWARD', maxInFlight: number, perMessage = 0) {
  const s = {
    id, role, workerId: id, isOpen: true, sent: [] as OrchestratorMessage[], credential: { kind: 'none', id: 'none', pinned: false },
    hello: { capabilities: { device: 'cpu', max_batch: 1, max_in_flight: maxInFlight, max_tasks_per_message: perMessage } },
    send: async (m: OrchestratorMessage) => void s.sent.push(m),
  };
  return s as unknown as WorkerSession & { sent: OrchestratorMessage[]; isOpen: boolean };
}

const task = (id: string, role: 'ROLLOUT' | 'REWARD' = 'ROLLOUT'): Task => ({
  id, role, attempt: 0,
  message: (attempt) => (role === 'ROLLOUT' ? { rollout_task: { task_id: id, attempt } } : { score_task: { task_id: id, attempt } }),
});

/** Dispatch runs once per turn of the event loop: let it run. */
const tick = () => new Promise<void>((r) => setImmediate(r));

function board(onGiveUp: (t: Task, reason: string) => void = () => {}, dispatch?: 'pack' | 'spread') {
  const metrics = createMetrics('tb', 'orchestrator');
  return { b: new TaskBoard({ leaseMs: 1000, maxAttempts: 3, metrics, onGiveUp, dispatch }), metrics };
}

test('tasks go to the least-loaded worker with room; the rest wait in the queue', async () => {
  const { b, metrics } = board();
  const [a, c, d] = [session('a', 'ROLLOUT', 2), session('c', 'ROLLOUT', 2), session('d', 'ROLLOUT', 1)];
  for (const s of [a, c, d]) b.attach(s);
  await tick();
  for (let i = 0; i < 7; i++) b.add(task(`t${i}`));
  await tick();
  assert.deepEqual([a.sent.length, c.sent.length, d.sent.length], [2, 2, 1]);
  // the first three went one to each worker (least loaded first)
  assert.deepEqual([a, c, d].map((s) => s.sent[0]!.rollout_task!.task_id).sort(), ['t0', 't1', 't2']);
  assert.equal(b.pending, 7);
  const depth = async () => (await metrics.registry.getSingleMetric('recovery_grpo_queue_depth')!.get()).values.find((v) => v.labels.queue === 'rollout')!.value;
  assert.equal(await depth(), 2);
  // a completion frees room: the next queued task goes to that worker
  const done = b.complete(d, d.sent[0]!.rollout_task!.task_id!);
  await tick();
  assert.ok(done);
  assert.equal(d.sent.length, 2);
  assert.equal(await depth(), 1);
  // a reward task is not held up by full rollout workers
  const r = session('r', 'REWARD', 1);
  b.attach(r);
  await tick();
  b.add(task('s0', 'REWARD'));
  await tick();
  assert.equal(r.sent[0]!.score_task!.task_id, 's0');
});

test('a worker that leaves: its tasks go to others (attempt + 1); after maxAttempts the task is given up', async () => {
  const given: string[] = [];
  const { b } = board((t, reason) => given.push(`${t.id}: ${reason}`));
  const [a, c] = [session('a', 'ROLLOUT', 1), session('c', 'ROLLOUT', 1)];
  b.attach(a);
  await tick();
  b.add(task('t0'));
  await tick();
  b.attach(c);
  await tick();
  a.isOpen = false;
  b.detach(a);
  await tick();
  assert.equal(c.sent[0]!.rollout_task!.attempt, 2);
  c.isOpen = false;
  b.detach(c);
  await tick();
  const e = session('e', 'ROLLOUT', 1);
  b.attach(e);
  await tick();
  assert.equal(e.sent[0]!.rollout_task!.attempt, 3);
  b.fail(e, 't0', 'internal', 'boom', true);
  await tick();
  assert.deepEqual(given, ['t0: internal: "boom"']);
  assert.equal(b.pending, 0);
  // a closed session is never picked, even before its detach arrives
  const f = session('f', 'ROLLOUT', 4);
  b.attach(f);
  await tick();
  f.isOpen = false;
  b.add(task('t1'));
  await tick();
  assert.equal(f.sent.length, 0);
  assert.equal(b.pending, 1);
});

test('a failed task is retried on a worker that has not failed it while one is attached; once all have, on any (review26a F4)', async () => {
  const given: string[] = [];
  const metrics = createMetrics('tb-steer', 'orchestrator');
  const b = new TaskBoard({ leaseMs: 1000, maxAttempts: 5, metrics, onGiveUp: (t, reason) => given.push(`${t.id}: ${reason}`) });
  const [a, c] = [session('a', 'ROLLOUT', 4), session('c', 'ROLLOUT', 4)];
  b.attach(a);
  b.attach(c);
  b.add(task('t0'), task('t1'));
  await tick();
  const held = (s: typeof a) => s.sent.flatMap((m) => (m.rollout_task ? [[m.rollout_task.task_id, m.rollout_task.attempt]] : []));
  assert.deepEqual([held(a), held(c)], [[['t0', 1]], [['t1', 1]]]);
  // a (now the least loaded) fails t0, retryable: it goes to c, which has room, not back to a
  b.fail(a, 't0', 'internal', 'again', true);
  await tick();
  assert.deepEqual([held(a), held(c)], [[['t0', 1]], [['t1', 1], ['t0', 2]]]);
  // c fails it too: every attached worker has failed it, so it is not held back (a gets it: no starvation)
  b.fail(c, 't0', 'bad_result', 'malformed', true);
  await tick();
  assert.deepEqual(held(a), [['t0', 1], ['t0', 3]]);
  // a third worker joins; a fails it again: the newcomer gets it
  const d = session('d', 'ROLLOUT', 4);
  b.attach(d);
  await tick();
  b.fail(a, 't0', 'internal', 'again', true);
  await tick();
  assert.deepEqual(held(d), [['t0', 4]]);
  assert.deepEqual(given, []);
});

test('a worker that takes tasks and reconnects (same worker id) gets them back only when no other worker can take them (review26a F4)', async () => {
  const metrics = createMetrics('tb-reconnect', 'orchestrator');
  let now = 0;
  const b = new TaskBoard({ leaseMs: 100, maxAttempts: 5, metrics, onGiveUp: () => {}, now: () => now });
  const honest = session('honest', 'ROLLOUT', 1);
  let flaky = session('flaky', 'ROLLOUT', 4);
  b.attach(flaky);
  b.attach(honest);
  b.add(task('t0'), task('t1'));
  await tick();
  const ids = (s: typeof flaky) => s.sent.flatMap((m) => (m.rollout_task ? [`${m.rollout_task.task_id}@${m.rollout_task.attempt}`] : []));
  assert.deepEqual([ids(flaky), ids(honest)], [['t0@1'], ['t1@1']]);
  // flaky drops its stream and comes back under the same worker id (a new session): t0 waits for honest
  flaky.isOpen = false;
  b.detach(flaky);
  flaky = session('flaky', 'ROLLOUT', 4);
  b.attach(flaky);
  await tick();
  assert.deepEqual(ids(flaky), [], 'not handed back to the worker id that dropped it');
  b.complete(honest, 't1');
  await tick();
  assert.deepEqual(ids(honest), ['t1@1', 't0@2']);
  // a lease that runs out counts the same: t2 (flaky's) goes to honest once it has room
  b.add(task('t2'));
  await tick();
  assert.deepEqual(ids(flaky), ['t2@1']);
  now += 60;
  b.renew(honest, ['t0']); // honest heart-beats its task; flaky does not
  now += 60;
  b.expireLeases();
  await tick();
  assert.deepEqual(ids(flaky), ['t2@1'], 'not back to the worker whose lease ran out while honest is attached');
  b.complete(honest, 't0');
  await tick();
  assert.deepEqual(ids(honest), ['t1@1', 't0@2', 't2@2']);
  // with honest gone, the reconnecting worker is the only one left: it gets its task again (bounded by maxAttempts)
  b.fail(honest, 't2', 'internal', 'x', true);
  honest.isOpen = false;
  b.detach(honest);
  await tick();
  assert.deepEqual(ids(flaky), ['t2@1', 't2@3']);
});

test('results count only from the role that does the task, and only once', async () => {
  const { b } = board();
  const a = session('a', 'ROLLOUT', 1);
  const r = session('r', 'REWARD', 1);
  b.attach(a);
  await tick();
  b.attach(r);
  await tick();
  b.add(task('t0'));
  await tick();
  assert.equal(b.complete(r, 't0'), undefined, 'a reward worker cannot complete a rollout task');
  assert.equal(b.complete(a, 'nope'), undefined);
  assert.ok(b.complete(a, 't0'));
  assert.equal(b.complete(a, 't0'), undefined, 'the second result is a duplicate');
});

test('leases run on the board\'s monotonic clock: renewed by heartbeats, never past maxTaskMs; the wall clock plays no part', async () => {
  const metrics = createMetrics('tb-clock', 'orchestrator');
  let now = 1_000; // the monotonic clock the board reads (performance.now in the orchestrator)
  const b = new TaskBoard({ leaseMs: 100, maxTaskMs: 250, maxAttempts: 3, metrics, onGiveUp: () => {}, now: () => now });
  const a = session('a', 'ROLLOUT', 1);
  b.attach(a);
  await tick();
  b.add(task('t0'));
  await tick();
  now += 90;
  b.renew(a, ['t0']); // lease now runs to 1190
  now += 90;
  b.expireLeases();
  await tick();
  assert.equal(a.sent.filter((m) => m.cancel_task).length, 0, 'a renewed lease does not expire');
  // a heartbeat from another worker listing the task renews nothing
  const c = session('c', 'ROLLOUT', 1);
  b.attach(c);
  await tick();
  b.renew(c, ['t0']);
  now += 20; // 1200 > 1190
  b.expireLeases();
  await tick();
  assert.equal(a.sent.at(-1)!.cancel_task?.reason, 'lease expired');
  assert.equal(c.sent[0]!.rollout_task!.task_id, 't0');
  // c renews every 90 ms: the lease holds until the task's 250 ms total, then it is taken back
  const dispatched = now;
  let cancelled = -1;
  for (let i = 0; i < 10 && cancelled < 0; i++) {
    now += 90;
    b.expireLeases();
    await tick();
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
  await tick();
  for (let i = 0; i < 10; i++) b.add(task(`t${i}`));
  await tick();
  assert.equal(greedy.sent.length, 3);
  b.fail(greedy, 'nobody-holds-this', 'x'.repeat(100), 'm', true);
  await tick();
  b.fail(greedy, 't0', 'made-up', 'm', true);
  await tick();
  b.fail(greedy, 't1', 'internal', 'm', true);
  await tick();
  // the series an alert names in full exist at 0 from the start (lib/metrics ALERTED_COUNTERS): only counted ones here
  const codes = (await metrics.registry.getSingleMetric('recovery_grpo_task_errors_total')!.get()).values.filter((v) => v.value > 0).map((v) => `${v.labels.code}=${v.value}`).sort();
  assert.deepEqual(codes, ['internal=1', 'other=1']);
});

test('a worker that asks for several tasks per message gets them in one TaskBundle, up to its ask and its room', async () => {
  const { b } = board();
  const w = session('w', 'ROLLOUT', 6, 4);
  b.attach(w);
  b.add(...Array.from({ length: 9 }, (_, i) => task(`t${i}`)));
  await tick();
  // 4 (its ask), then 2 more (its room: max_in_flight 6); each a bundle, in queue order
  assert.deepEqual(w.sent.map((m) => m.task_bundle!.rollout_tasks!.map((t) => t.task_id)), [['t0', 't1', 't2', 't3'], ['t4', 't5']]);
  assert.ok(w.sent.every((m) => m.task_bundle!.rollout_tasks!.every((t) => t.attempt === 1)));
  // results that arrive in the same turn free room together: the next dispatch is one bundle again
  for (const id of ['t0', 't1', 't2']) assert.ok(b.complete(w, id));
  await tick();
  assert.deepEqual(w.sent[2]!.task_bundle!.rollout_tasks!.map((t) => t.task_id), ['t6', 't7', 't8']);
  // a single task to such a worker travels as a plain rollout_task
  for (const id of ['t3', 't4', 't5', 't6', 't7', 't8']) b.complete(w, id);
  b.add(task('u0'));
  await tick();
  assert.equal(w.sent[3]!.rollout_task!.task_id, 'u0');
});

test('dispatch policies: spread gives each worker with room its share first; pack fills the least-loaded worker\'s ask first', async () => {
  const sizes = (s: ReturnType<typeof session>) => s.sent.map((m) => m.task_bundle?.score_tasks?.length ?? (m.score_task ? 1 : 0));
  const ids = (s: ReturnType<typeof session>) => s.sent.flatMap((m) => m.task_bundle?.score_tasks?.map((t) => t.task_id) ?? [m.score_task!.task_id]);
  {
    const { b } = board(undefined, 'spread');
    const [x, y, z] = [session('x', 'REWARD', 8, 8), session('y', 'REWARD', 8, 8), session('z', 'REWARD', 8, 8)];
    for (const s of [x, y, z]) b.attach(s);
    b.add(...Array.from({ length: 3 }, (_, i) => task(`a${i}`, 'REWARD')));
    await tick();
    assert.deepEqual([x, y, z].map(sizes), [[1], [1], [1]], 'spread: three tasks, three free workers: one each');
    b.add(...Array.from({ length: 12 }, (_, i) => task(`b${i}`, 'REWARD')));
    await tick();
    assert.deepEqual([x, y, z].map(sizes), [[1, 4], [1, 4], [1, 4]], 'spread: twelve: a bundle of four each');
    assert.deepEqual(b.sent, { messages: 6, tasks: 15 });
  }
  {
    const { b } = board(undefined, 'pack');
    const [x, y, z] = [session('x', 'REWARD', 8, 4), session('y', 'REWARD', 8, 4), session('z', 'REWARD', 8, 4)];
    for (const s of [x, y, z]) b.attach(s);
    b.add(...Array.from({ length: 3 }, (_, i) => task(`a${i}`, 'REWARD')));
    await tick();
    assert.deepEqual([x, y, z].map(sizes), [[3], [], []], 'pack: three tasks go to one worker in one message');
    // the next ones go to the least-loaded workers first, each up to its ask (4), then to x's room (8)
    b.add(...Array.from({ length: 12 }, (_, i) => task(`b${i}`, 'REWARD')));
    await tick();
    assert.deepEqual([x, y, z].map(sizes), [[3, 4], [4], [4]]);
    assert.deepEqual([x, y, z].map(ids), [['a0', 'a1', 'a2', 'b8', 'b9', 'b10', 'b11'], ['b0', 'b1', 'b2', 'b3'], ['b4', 'b5', 'b6', 'b7']]);
    assert.deepEqual(b.sent, { messages: 4, tasks: 15 });
    // workers that ask for one per message get one per message, spread, under either policy
    const [p, q] = [session('p', 'ROLLOUT', 4), session('q', 'ROLLOUT', 4)];
    b.attach(p);
    b.attach(q);
    b.add(task('r0'), task('r1'), task('r2'));
    await tick();
    assert.deepEqual([p, q].map((s) => s.sent.map((m) => m.rollout_task!.task_id)), [['r0', 'r2'], ['r1']]);
  }
  assert.throws(() => new TaskBoard({ leaseMs: 1, maxAttempts: 1, metrics: createMetrics('tb-bad', 'orchestrator'), onGiveUp: () => {}, dispatch: 'even' as 'pack' }), /dispatch must be one of pack, spread, got "even"/);
});

test('spread with bundleMs: cheap tasks go several per message, up to what a worker finishes within bundleMs; slow ones spread', async () => {
  let now = 0; // the board's clock: it alone decides how long tasks took
  const b = new TaskBoard({ leaseMs: 60_000, maxAttempts: 3, metrics: createMetrics('tb-bundle', 'orchestrator'), onGiveUp: () => {}, dispatch: 'spread', bundleMs: 2, now: () => now });
  const [x, y, z] = [session('x', 'REWARD', 8, 8), session('y', 'REWARD', 8, 8), session('z', 'REWARD', 8, 8)];
  for (const s of [x, y, z]) b.attach(s);
  const sizes = (s: ReturnType<typeof session>) => s.sent.map((m) => m.task_bundle?.score_tasks?.length ?? (m.score_task ? 1 : 0));
  const ids = (s: ReturnType<typeof session>) => s.sent.flatMap((m) => m.task_bundle?.score_tasks?.map((t) => t.task_id!) ?? [m.score_task!.task_id!]);
  const finish = (...ws: ReturnType<typeof session>[]) => {
    for (const w of ws) for (const id of ids(w)) b.complete(w, id);
  };
  const add = async (prefix: string, n: number) => {
    b.add(...Array.from({ length: n }, (_, i) => task(`${prefix}${i}`, 'REWARD')));
    await tick();
  };
  await add('a', 3);
  assert.deepEqual([x, y, z].map(sizes), [[1], [1], [1]], 'no result seen yet: the even share');
  now = 10;
  finish(x, y, z); // 10 ms per task: slower than bundleMs
  await add('b', 3);
  assert.deepEqual([x, y, z].map(sizes), [[1, 1], [1, 1], [1, 1]], 'slow tasks: spread');
  now = 10.5;
  finish(x, y, z); // the b tasks took 0.5 ms each: four fit in 2 ms
  await add('c', 6);
  assert.deepEqual([x, y, z].map(sizes), [[1, 1, 4], [1, 1, 2], [1, 1]], 'cheap tasks: four per message, the least-loaded worker first');
  now = 2010.5;
  finish(x, y); // 500 ms per task, in a new window: the cheap ones of the last window still count
  await add('d', 3);
  assert.deepEqual([x, y, z].map(sizes), [[1, 1, 4], [1, 1, 2], [1, 1, 3]], 'still bundled (z waited longest at load 0)');
  now = 3100;
  finish(z); // the next window sees only slow tasks: the cheap pace is forgotten, spread again
  await add('e', 3);
  assert.deepEqual([x, y, z].map(sizes), [[1, 1, 4, 1], [1, 1, 2, 1], [1, 1, 3, 1]]);
  assert.throws(() => new TaskBoard({ leaseMs: 1, maxAttempts: 1, metrics: createMetrics('tb-bad-b', 'orchestrator'), onGiveUp: () => {}, bundleMs: -1 }), /bundleMs must be in \[0, 1000\] ms, got -1/);
});

test('spread with coalesceMs holds only cheap tasks (a bundle floor above the even share); slow ones go at once', async () => {
  let now = 0;
  const b = new TaskBoard({ leaseMs: 60_000, maxAttempts: 3, metrics: createMetrics('tb-sco', 'orchestrator'), onGiveUp: () => {}, dispatch: 'spread', bundleMs: 2, coalesceMs: 5, now: () => now });
  const [x, y] = [session('x', 'ROLLOUT', 8, 8), session('y', 'ROLLOUT', 8, 8)];
  b.attach(x);
  b.attach(y);
  const sizes = (s: ReturnType<typeof session>) => s.sent.map((m) => m.task_bundle?.rollout_tasks?.length ?? (m.rollout_task ? 1 : 0));
  b.add(task('a0'), task('a1'));
  await tick();
  assert.deepEqual([x, y].map(sizes), [[1], [1]], 'pace unknown: the even share goes at once');
  now = 10;
  assert.ok(b.complete(x, 'a0'));
  assert.ok(b.complete(y, 'a1')); // 10 ms per task: no floor
  b.add(task('b0'));
  await tick();
  assert.deepEqual([x, y].map(sizes), [[1, 1], [1]], 'slow tasks are not held');
  now = 10.25;
  assert.ok(b.complete(x, 'b0')); // 0.25 ms: a floor of 8
  b.add(task('c0'), task('c1'), task('c2'));
  await tick();
  assert.deepEqual([x, y].map(sizes), [[1, 1], [1]], 'cheap tasks wait for more (3 of a floor of 8)');
  now = 12;
  b.add(...Array.from({ length: 5 }, (_, i) => task(`d${i}`)));
  await tick();
  assert.deepEqual([x, y].map(sizes), [[1, 1], [1, 8]], 'eight fill the message: it goes at once, to y (waited longest at its level)');
  b.add(task('e0'));
  await tick();
  assert.equal(sizes(x).length + sizes(y).length, 4, 'one cheap task is held');
  now = 17.5;
  b.add(); // any event pumps again (as the board's own coalescing timer would); by its clock e0 is 5.5 ms old
  await tick();
  assert.deepEqual([x, y].map(sizes), [[1, 1, 1], [1, 8]], 'held no longer than coalesceMs');
});

test('pack with coalesceMs: a message the queue cannot fill waits until its oldest task is coalesceMs old; a full one goes at once', async () => {
  let now = 0; // the board's clock; its coalescing timer is real, and pumps again when it fires
  const b = new TaskBoard({ leaseMs: 1000, maxAttempts: 3, metrics: createMetrics('tb-co', 'orchestrator'), onGiveUp: () => {}, dispatch: 'pack', coalesceMs: 5, now: () => now });
  const w = session('w', 'REWARD', 8, 4);
  const one = session('one', 'ROLLOUT', 4); // asks for one per message: never held
  b.attach(w);
  b.attach(one);
  b.add(task('s0', 'REWARD'), task('s1', 'REWARD'), task('r0'));
  await tick();
  assert.equal(w.sent.length, 0, 'two tasks cannot fill an ask of four: held');
  assert.equal(one.sent.length, 1, 'a worker that asks for one is not held');
  now = 2;
  b.add(task('s2', 'REWARD'), task('s3', 'REWARD'), task('s4', 'REWARD'));
  await tick();
  assert.deepEqual(w.sent.map((m) => m.task_bundle!.score_tasks!.map((t) => t.task_id)), [['s0', 's1', 's2', 's3']], 'four fill the ask: sent at once');
  now = 4;
  await new Promise((r) => setTimeout(r, 20)); // the timer fires, but s4 (queued since 0) is 4 ms old: still held
  assert.equal(w.sent.length, 1);
  now = 5;
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(w.sent.slice(1).map((m) => m.score_task?.task_id), ['s4'], 'at coalesceMs it goes alone');
  assert.throws(() => new TaskBoard({ leaseMs: 1, maxAttempts: 1, metrics: createMetrics('tb-co2', 'orchestrator'), onGiveUp: () => {}, coalesceMs: -1 }), /coalesceMs must be in \[0, 1000\] ms, got -1/);
});

test('a re-queued task goes before newer ones; a result for a queued task counts as foreign, for an unknown id as a duplicate', async () => {
  const { b, metrics } = board();
  const a = session('a', 'ROLLOUT', 1);
  b.attach(a);
  b.add(task('t0'), task('t1'), task('t2'));
  await tick();
  assert.equal(a.sent[0]!.rollout_task!.task_id, 't0');
  const other = session('o', 'ROLLOUT', 1);
  b.attach(other);
  await tick();
  b.fail(a, 't0', 'internal', 'boom', true); // retryable: t0 goes back to the queue's front, before t2
  b.complete(other, 't2'); // t2 is queued, not other's (t1 went to it)
  b.complete(other, 'never-sent');
  await tick();
  // t0 waits for the worker that has not failed it (review26a F4); a, which failed it, takes t2 meanwhile
  assert.deepEqual(a.sent.map((m) => [m.rollout_task!.task_id, m.rollout_task!.attempt]), [['t0', 1], ['t2', 1]]);
  const count = async (name: string) => (await metrics.registry.getSingleMetric(`recovery_grpo_${name}`)!.get()).values.reduce((n, v) => n + v.value, 0);
  assert.equal(await count('foreign_results_total'), 1);
  assert.equal(await count('duplicate_results_total'), 1);
  assert.equal(b.pending, 3);
  // a newer task queued behind it: the re-queued t0 goes first once other has room
  b.add(task('t3'));
  b.complete(other, 't1');
  await tick();
  assert.deepEqual(other.sent.map((m) => [m.rollout_task!.task_id, m.rollout_task!.attempt]), [['t1', 1], ['t0', 2]]);
});

test('TaskQueue keeps the order of a plain array through wrap-around and growth; has() follows what is queued', () => {
  const q = new TaskQueue<{ id: string }>();
  const ref: Array<{ id: string }> = [];
  let x = 12345;
  const rnd = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let i = 0; i < 5000; i++) {
    const r = rnd();
    if (r < 0.45) { const t = { id: `p${i}` }; q.push(t); ref.push(t); }
    else if (r < 0.6) { const t = { id: `u${i}` }; q.unshift(t); ref.unshift(t); }
    else assert.equal(q.shift(), ref.shift());
    assert.equal(q.length, ref.length);
    assert.equal(q.peek(), ref[0]);
  }
  const gone = q.removeWhere((t) => t.id.endsWith('7'));
  assert.deepEqual(gone, ref.filter((t) => t.id.endsWith('7')));
  const kept = ref.filter((t) => !t.id.endsWith('7'));
  assert.ok(kept.every((t) => q.has(t.id)) && gone.every((t) => !q.has(t.id)));
  const drained: Array<{ id: string }> = [];
  for (let t = q.shift(); t; t = q.shift()) drained.push(t);
  assert.deepEqual(drained, kept);
});

test('task ids: the prefix and 24 hex digits (96 random bits), none repeated across refills of the random pool', () => {
  const ids = Array.from({ length: 2000 }, () => newTaskId('run-r7'));
  for (const id of ids) assert.match(id, /^run-r7-[0-9a-f]{24}$/);
  assert.equal(new Set(ids).size, ids.length);
  assert.equal(new Set(ids.map((id) => id.slice(-24))).size, ids.length, 'no token reused');
});
