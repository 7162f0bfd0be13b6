// Leases for rollout and score tasks: which worker holds which task until when. A task whose holder
// disconnects, misses its lease or reports a retryable error goes back to the queue and is handed to
// another worker (attempt + 1); the first result for a task id wins and later ones are counted and ignored.
// A task belongs to its holder: a result or error for it is accepted only from the session that holds its
// current lease, and its id carries a random token, so another worker can neither name nor finish it.
// Leases run on the monotonic clock (performance.now), renewed by heartbeats up to maxTaskMs in all.

import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { OrchestratorMessage, WorkerRole, WorkerSession } from '../lib/transport/index.ts';
import type { Metrics } from '../lib/metrics/index.ts';

export interface Task {
  readonly id: string;
  readonly role: WorkerRole;
  attempt: number;
  /** The message to send for the current attempt. */
  message(attempt: number, leaseMs: number): OrchestratorMessage;
  holder?: WorkerSession;
  /** Monotonic ms (performance.now) when the lease runs out; never later than dispatchedAt + maxTaskMs. */
  deadline?: number;
  /** Monotonic ms of the current dispatch. */
  dispatchedAt?: number;
}

/** The error codes task_errors_total counts by name; any other code a worker sends is counted as `other`. */
export const TASK_ERROR_CODES = [
  'bad_input', 'bad_result', 'non_finite', 'internal', 'policy_unavailable', 'wrong_kind', 'wrong_role',
  'shutting_down', 'unsupported', 'gap', 'unverified_claim', 'unknown',
] as const;

/** A label for task_errors_total from a worker-chosen code: one of TASK_ERROR_CODES, else `other`. */
export function errorCodeLabel(code: string): string {
  if (!code) return 'unknown';
  return (TASK_ERROR_CODES as readonly string[]).includes(code) ? code : 'other';
}

/**
 * A task id: readable prefix (run, kind, cursor) plus 96 random bits, the task's lease token. Ids are not
 * derived from the cursor alone, so a worker cannot address a task it was never sent.
 */
export function newTaskId(prefix: string): string {
  return `${prefix}-${randomBytes(12).toString('hex')}`;
}

interface BoundMetrics {
  dispatched: { inc(): void };
  completedOk: { inc(): void };
  completedError: { inc(): void };
  latency: { observe(v: number): void };
  redispatches: { inc(): void };
  leaseExpiries: { inc(): void };
  foreign: { inc(): void };
  duplicate: { inc(): void };
}

export interface TaskBoardOptions {
  leaseMs: number;
  /** A task's total time with one holder, heartbeats or not (orchestrator.maxTaskSeconds). Default 10 leases. */
  maxTaskMs?: number;
  /** Most tasks one worker holds at once, whatever its Hello asks (orchestrator.maxInFlightPerWorker). Default 1024. */
  maxInFlight?: number;
  /** Monotonic clock in ms (default performance.now); a test may drive its own. */
  now?: () => number;
  /** A task that failed this many times is given up (its sample is dropped). */
  maxAttempts: number;
  metrics: Metrics;
  /** Called when a task is given up after maxAttempts, with the last reason. */
  onGiveUp: (task: Task, reason: string) => void;
}

export class TaskBoard {
  private readonly queue: Task[] = [];
  private readonly active = new Map<string, Task>();
  private readonly sessions = new Set<WorkerSession>();
  /** Active tasks per holder (kept in step with `active`: picking a worker must not scan every task). */
  private readonly loads = new Map<WorkerSession, number>();
  /**
   * Attached sessions that have room, per role, by their load: free[role][n] holds those with n active tasks
   * (n < max_in_flight). pick() takes from the lowest level, so choosing the least-loaded worker costs
   * O(max_in_flight), not O(workers) (hundreds of workers at thousands of tasks per second).
   */
  private readonly free = new Map<WorkerRole, Array<Set<WorkerSession>>>();

  /** Metric children bound once per role label (a dispatch and a result then update them without label lookups). */
  private readonly bound = new Map<WorkerRole, BoundMetrics>();
  private readonly queueDepth: { rollout: { set(v: number): void }; score: { set(v: number): void } };

  private readonly now: () => number;
  private readonly maxTaskMs: number;
  private readonly maxInFlight: number;

  constructor(private readonly o: TaskBoardOptions) {
    this.now = o.now ?? (() => performance.now());
    this.maxTaskMs = o.maxTaskMs ?? 10 * o.leaseMs;
    this.maxInFlight = o.maxInFlight ?? 1024;
    const depth = o.metrics.get('queue_depth');
    this.queueDepth = { rollout: depth.labels({ queue: 'rollout' }), score: depth.labels({ queue: 'score' }) };
  }

  private m(role: WorkerRole): BoundMetrics {
    let b = this.bound.get(role);
    if (!b) {
      const worker_role = role.toLowerCase();
      const mm = this.o.metrics;
      b = {
        dispatched: mm.get('tasks_dispatched_total').labels({ worker_role }),
        completedOk: mm.get('tasks_completed_total').labels({ worker_role, outcome: 'ok' }),
        completedError: mm.get('tasks_completed_total').labels({ worker_role, outcome: 'error' }),
        latency: mm.get('task_latency_seconds').labels({ worker_role }),
        redispatches: mm.get('redispatches_total').labels({ worker_role }),
        leaseExpiries: mm.get('lease_expiries_total').labels({ worker_role }),
        foreign: mm.get('foreign_results_total').labels({ worker_role }),
        duplicate: mm.get('duplicate_results_total').labels({ worker_role }),
      };
      this.bound.set(role, b);
    }
    return b;
  }

  /** Queued tasks per role (the queue_depth gauges, and pump() stops once every queued role is full). */
  private readonly queued = new Map<WorkerRole, number>();

  private countQueued(role: WorkerRole, d: number): void {
    this.queued.set(role, (this.queued.get(role) ?? 0) + d);
  }

  add(task: Task): void {
    this.queue.push(task);
    this.countQueued(task.role, 1);
    this.pump();
  }

  attach(session: WorkerSession): void {
    this.sessions.add(session);
    this.setLoad(session, this.load(session));
    this.pump();
  }

  /** A worker left: everything it held goes back to the queue. */
  detach(session: WorkerSession): void {
    this.sessions.delete(session);
    for (const t of [...this.active.values()]) if (t.holder === session) this.requeue(t, `worker ${session.workerId} disconnected`);
    for (const level of this.free.get(session.role) ?? []) level.delete(session);
    this.loads.delete(session);
    this.pump();
  }

  private room(s: WorkerSession): number {
    return Math.min(this.maxInFlight, Math.max(1, s.hello.capabilities?.max_in_flight ?? 1));
  }

  /** Records a session's load and files it under its level (if attached, open and with room). */
  private setLoad(s: WorkerSession, n: number): void {
    const levels = this.free.get(s.role) ?? this.free.set(s.role, []).get(s.role)!;
    const old = this.loads.get(s) ?? 0;
    levels[old]?.delete(s);
    if (n > 0) this.loads.set(s, n);
    else this.loads.delete(s);
    if (this.sessions.has(s) && s.isOpen && n < this.room(s)) (levels[n] ??= new Set()).add(s);
  }

  /**
   * The task for a result from `session`, or undefined when `session` does not hold its current lease: a
   * duplicate, an unknown id, or a result from another worker (each counted; the holder's lease stands).
   */
  complete(session: WorkerSession, taskId: string): Task | undefined {
    const t = this.active.get(taskId);
    if (!t || t.holder !== session) {
      const known = t !== undefined || this.queue.some((q) => q.id === taskId);
      const sm = this.m(session.role);
      (known ? sm.foreign : sm.duplicate).inc();
      return undefined;
    }
    this.deactivate(t);
    const tm = this.m(t.role);
    if (t.dispatchedAt !== undefined) tm.latency.observe((this.now() - t.dispatchedAt) / 1000);
    tm.completedOk.inc();
    this.pump();
    return t;
  }

  /** A worker could not do a task: retry elsewhere, or give up after maxAttempts. */
  fail(session: WorkerSession, taskId: string, code: string, message: string, retryable: boolean): void {
    const t = this.active.get(taskId);
    // Counted only for the holder of the task's lease, under a code from a fixed set: a worker cannot
    // grow the metric's series or report errors for tasks it does not hold.
    if (!t || t.holder !== session) {
      this.m(session.role).foreign.inc();
      return;
    }
    this.o.metrics.get('task_errors_total').inc({ worker_role: session.role.toLowerCase(), code: errorCodeLabel(code) });
    this.m(t.role).completedError.inc();
    if (!retryable || t.attempt >= this.o.maxAttempts) {
      this.deactivate(t);
      this.o.onGiveUp(t, `${code}: ${message}`);
      this.pump();
      return;
    }
    this.requeue(t, `${code}: ${message}`);
    this.pump();
  }

  /** A heartbeat from `session`: renews the leases of the listed tasks it holds, capped at maxTaskMs. */
  renew(session: WorkerSession, taskIds: readonly string[]): void {
    const now = this.now();
    for (const id of taskIds) {
      const t = this.active.get(id);
      if (t && t.holder === session) t.deadline = Math.min(now + this.o.leaseMs, (t.dispatchedAt ?? now) + this.maxTaskMs);
    }
  }

  /** Re-dispatches tasks whose lease ran out; call periodically. */
  expireLeases(now = this.now()): void {
    // Only the expired tasks are collected (requeue changes `active`); the others are read in place, not copied.
    const expired: Task[] = [];
    for (const t of this.active.values()) if (t.deadline !== undefined && t.deadline < now) expired.push(t);
    for (const t of expired) {
      if (this.active.get(t.id) === t && t.deadline !== undefined && t.deadline < now) {
        const overTime = t.dispatchedAt !== undefined && now - t.dispatchedAt >= this.maxTaskMs;
        const reason = overTime ? 'task time limit reached' : 'lease expired';
        this.m(t.role).leaseExpiries.inc();
        const old = t.holder;
        this.requeue(t, reason);
        old?.send({ cancel_task: { task_id: t.id, reason } }).catch(() => undefined);
      }
    }
    this.pump();
  }

  private deactivate(t: Task): void {
    if (this.active.get(t.id) !== t) return;
    this.active.delete(t.id);
    if (t.holder) this.setLoad(t.holder, Math.max(0, this.load(t.holder) - 1));
  }

  private requeue(t: Task, _reason: string): void {
    this.deactivate(t);
    this.m(t.role).redispatches.inc();
    t.holder = undefined;
    t.deadline = undefined;
    if (t.attempt >= this.o.maxAttempts) {
      this.o.onGiveUp(t, _reason);
      return;
    }
    this.queue.unshift(t);
    this.countQueued(t.role, 1);
  }

  /** Hands queued tasks to the least-loaded workers of their role that have room. */
  pump(): void {
    const full = new Set<WorkerRole>(); // roles with no room left: their other queued tasks wait too
    let waiting = 0; // roles with queued tasks
    for (const n of this.queued.values()) if (n > 0) waiting++;
    for (let i = 0; i < this.queue.length && full.size < waiting; ) {
      const t = this.queue[i];
      const worker = full.has(t.role) ? undefined : this.pick(t.role);
      if (!worker) {
        full.add(t.role);
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      this.countQueued(t.role, -1);
      t.attempt += 1;
      t.holder = worker;
      t.dispatchedAt = this.now();
      t.deadline = t.dispatchedAt + Math.min(this.o.leaseMs, this.maxTaskMs);
      this.active.set(t.id, t);
      this.setLoad(worker, this.load(worker) + 1);
      this.m(t.role).dispatched.inc();
      worker.send(t.message(t.attempt, this.o.leaseMs)).catch((e: Error) => {
        if (this.active.get(t.id) === t && t.holder === worker) this.requeue(t, `send failed: ${e.message}`);
      });
    }
    this.queueDepth.rollout.set(this.queued.get('ROLLOUT') ?? 0);
    this.queueDepth.score.set(this.queued.get('REWARD') ?? 0);
  }

  private load(s: WorkerSession): number {
    return this.loads.get(s) ?? 0;
  }

  /** The least-loaded open session of `role` with room (ties: the one that waited longest at that load). */
  private pick(role: WorkerRole): WorkerSession | undefined {
    for (const level of this.free.get(role) ?? []) {
      if (!level) continue;
      for (const s of level) {
        if (s.isOpen) return s;
        level.delete(s); // closed, detach follows
      }
    }
    return undefined;
  }

  get pending(): number {
    return this.queue.length + this.active.size;
  }

  /** Drops every task matching `pred` (queued or active), e.g. when its batch is abandoned. */
  cancelWhere(pred: (t: Task) => boolean): void {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (pred(this.queue[i])) this.countQueued(this.queue.splice(i, 1)[0]!.role, -1);
    }
    for (const t of [...this.active.values()]) if (pred(t)) this.deactivate(t);
  }
}
