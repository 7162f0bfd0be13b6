// spread's bundle floor under a slow consumer (issue #15, round 10): a workers' host with a cost per message falls
// behind when it gets one message per task, its round trips become mostly waiting, and time per task = round trip
// over tasks then reads 'slow' for cheap tasks. The board must come back to bundling (its probes measure what one
// more task in a message costs), while tasks that are slow indeed stay spread. Everything runs on the board's clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics } from '../../lib/metrics/index.ts';
import type { OrchestratorMessage, WorkerSession } from '../../lib/transport/index.ts';
import { TaskBoard, type Task } from '../../orchestrator/task-board.ts';

type Sim = WorkerSession & { sent: OrchestratorMessage[]; seen: number };

function session(id: string, ask: number): Sim {
  const s = {
    id, role: 'ROLLOUT', workerId: id, isOpen: true, sent: [] as OrchestratorMessage[], seen: 0,
    hello: { capabilities: { device: 'cpu', max_batch: 1, max_in_flight: 1024, max_tasks_per_message: ask } },
    send: async (m: OrchestratorMessage) => void s.sent.push(m),
  };
  return s as unknown as Sim;
}

const tick = () => new Promise<void>((r) => setImmediate(r));
const idsOf = (m: OrchestratorMessage) => m.task_bundle?.rollout_tasks?.map((t) => t.task_id!) ?? [m.rollout_task!.task_id!];

/**
 * Twenty workers. With `shared`, one host serves every worker's messages in arrival order (all simulated workers in
 * one process, as the load bench), else each worker serves its own. A message of n tasks costs perMessageMs +
 * n * perTaskMs of its server's time (perTaskMs 0.01 before cheapUntilMs), and all its results come back when it is
 * done. Tasks are offered at `perMs` a millisecond; `stallAt` stops the shared host for stallMs once. Returns the
 * tasks per message of each second, and how many messages of the last second were bundles.
 */
async function simulate(o: { shared: boolean; perMessageMs: number; perTaskMs: number; perMs: number; seconds: number; stallAt?: number; stallMs?: number; cheapUntilMs?: number }) {
  let now = 0;
  const board = new TaskBoard({ leaseMs: 600_000, maxTaskMs: 600_000, maxAttempts: 3, metrics: createMetrics('tb-slow', 'orchestrator'), onGiveUp: () => {}, dispatch: 'spread', bundleMs: 5, now: () => now });
  const workers = Array.from({ length: 20 }, (_, i) => session(`w${i}`, 16));
  for (const w of workers) board.attach(w);
  let busyUntil = 0;
  const busy = new Map<Sim, number>();
  const due: { at: number; w: Sim; ids: string[] }[] = [];
  let next = 0;
  const perSecond: { messages: number; tasks: number; bundles: number }[] = [];
  for (let ms = 0; ms < o.seconds * 1000; ms++) {
    now = ms;
    if (ms === o.stallAt) busyUntil = Math.max(busyUntil, ms) + (o.stallMs ?? 0);
    while (due.length > 0 && due[0]!.at <= now) {
      const d = due.shift()!;
      for (const id of d.ids) board.complete(d.w, id);
    }
    board.add(...Array.from({ length: o.perMs }, (): Task => {
      const id = `t${next++}`;
      return { id, role: 'ROLLOUT', attempt: 0, message: (attempt) => ({ rollout_task: { task_id: id, attempt } }) };
    }));
    await tick();
    const sec = (perSecond[Math.floor(ms / 1000)] ??= { messages: 0, tasks: 0, bundles: 0 });
    for (const w of workers) {
      for (; w.seen < w.sent.length; w.seen++) {
        const ids = idsOf(w.sent[w.seen]!);
        assert.ok(ids.length > 0, "no empty message");
        const perTask = o.cheapUntilMs !== undefined && ms < o.cheapUntilMs ? 0.01 : o.perTaskMs;
        const cost = o.perMessageMs + ids.length * perTask;
        let at: number;
        if (o.shared) at = busyUntil = Math.max(busyUntil, now) + cost;
        else busy.set(w, (at = Math.max(busy.get(w) ?? 0, now) + cost));
        due.push({ at, w, ids });
        if (!o.shared) due.sort((a, b) => a.at - b.at); // a shared FIFO host finishes in order already
        sec.messages++;
        sec.tasks += ids.length;
        if (ids.length > 1) sec.bundles++;
      }
    }
  }
  return { perSend: perSecond.map((s) => s.tasks / Math.max(1, s.messages)), lastBundles: perSecond.at(-1)!.bundles };
}
const show = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(' ');

test('spread under a slow consumer: after the host falls behind, cheap tasks go back to several per message', async (t) => {
  // 3 tasks a ms; the host pays 0.5 ms a message, 0.01 ms a task: one per message needs 1.5 ms of host time a ms
  // (it falls behind for good), bundles of 3 or more fit. A 1.5 s stall at 2 s puts every round trip past bundleMs.
  const { perSend } = await simulate({ shared: true, perMessageMs: 0.5, perTaskMs: 0.01, perMs: 3, seconds: 9, stallAt: 2000, stallMs: 1500 });
  t.diagnostic(`tasks per message, second by second: ${show(perSend)}`);
  assert.ok(perSend[1]! >= 2.5, `bundled before the stall: ${show(perSend)}`);
  assert.ok(perSend.slice(2, 7).some((s) => s < 2), `the stall drops it to one per message: ${show(perSend)}`);
  for (const s of perSend.slice(-2)) assert.ok(s >= 2.5, `bundled again in the last seconds: ${show(perSend)}`);
});

test('spread under a slow consumer: a host already behind when the first results come (never seen cheap) is probed too', async (t) => {
  const { perSend } = await simulate({ shared: true, perMessageMs: 0.5, perTaskMs: 0.01, perMs: 3, seconds: 8, stallAt: 0, stallMs: 1500 });
  t.diagnostic(`tasks per message, second by second: ${show(perSend)}`);
  assert.ok(perSend.slice(1, 4).some((s) => s < 2), `one per message while every result seen was slow: ${show(perSend)}`);
  for (const s of perSend.slice(-2)) assert.ok(s >= 2.5, `bundled in the last seconds: ${show(perSend)}`);
});

test('spread under a slow consumer: tasks that became slow indeed stay one per message, and the probes stop', async (t) => {
  // each worker its own host; cheap for the first 2 s (the role's best floor is high), then 10 ms a task, 2 tasks a
  // ms on twenty workers (every worker busy): spreading, not bundling, is what keeps their latency down
  const { perSend, lastBundles } = await simulate({ shared: false, perMessageMs: 0.05, perTaskMs: 10, perMs: 2, seconds: 7, cheapUntilMs: 2000 });
  t.diagnostic(`tasks per message, second by second: ${show(perSend)}`);
  assert.ok(perSend[1]! >= 1.8, `bundled while cheap: ${show(perSend)}`);
  assert.equal(perSend.at(-1), 1, `slow tasks one per message: ${show(perSend)}`);
  assert.equal(lastBundles, 0, 'no probes once they showed the tasks slow');
});
