// Leases for rollout and score tasks: which worker holds which task until when. A task whose holder
// disconnects, misses its lease or reports a retryable error goes back to the queue and is handed to
// another worker (attempt + 1); the first result for a task id wins and later ones are counted and ignored.

import type { OrchestratorMessage, WorkerRole, WorkerSession } from '../lib/transport/index.ts';
import type { Metrics } from '../lib/metrics/index.ts';

export interface Task {
  readonly id: string;
  readonly role: WorkerRole;
  attempt: number;
  /** The message to send for the current attempt. */
  message(attempt: number, leaseMs: number): OrchestratorMessage;
  holder?: WorkerSession;
  deadline?: number;
  dispatchedAt?: number;
}

export interface TaskBoardOptions {
  leaseMs: number;
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

  constructor(private readonly o: TaskBoardOptions) {}

  add(task: Task): void {
    this.queue.push(task);
    this.pump();
  }

  attach(session: WorkerSession): void {
    this.sessions.add(session);
    this.pump();
  }

  /** A worker left: everything it held goes back to the queue. */
  detach(session: WorkerSession): void {
    this.sessions.delete(session);
    for (const t of [...this.active.values()]) if (t.holder === session) this.requeue(t, `worker ${session.workerId} disconnected`);
    this.pump();
  }

  /** The task for a result from `session`, or undefined for a duplicate or unknown task id (counted). */
  complete(session: WorkerSession, taskId: string): Task | undefined {
    const t = this.active.get(taskId);
    if (!t || t.role !== session.role) {
      this.o.metrics.get('duplicate_results_total').inc({ worker_role: session.role.toLowerCase() });
      return undefined;
    }
    this.active.delete(taskId);
    if (t.dispatchedAt) this.o.metrics.get('task_latency_seconds').observe({ worker_role: t.role.toLowerCase() }, (Date.now() - t.dispatchedAt) / 1000);
    this.o.metrics.get('tasks_completed_total').inc({ worker_role: t.role.toLowerCase(), outcome: 'ok' });
    this.pump();
    return t;
  }

  /** A worker could not do a task: retry elsewhere, or give up after maxAttempts. */
  fail(session: WorkerSession, taskId: string, code: string, message: string, retryable: boolean): void {
    const t = this.active.get(taskId);
    this.o.metrics.get('task_errors_total').inc({ worker_role: session.role.toLowerCase(), code: code || 'unknown' });
    if (!t || t.holder !== session) return;
    this.o.metrics.get('tasks_completed_total').inc({ worker_role: t.role.toLowerCase(), outcome: 'error' });
    if (!retryable || t.attempt >= this.o.maxAttempts) {
      this.active.delete(taskId);
      this.o.onGiveUp(t, `${code}: ${message}`);
      this.pump();
      return;
    }
    this.requeue(t, `${code}: ${message}`);
    this.pump();
  }

  renew(session: WorkerSession, taskIds: readonly string[]): void {
    const until = Date.now() + this.o.leaseMs;
    for (const id of taskIds) {
      const t = this.active.get(id);
      if (t && t.holder === session) t.deadline = until;
    }
  }

  /** Re-dispatches tasks whose lease ran out; call periodically. */
  expireLeases(now = Date.now()): void {
    for (const t of [...this.active.values()]) {
      if (t.deadline !== undefined && t.deadline < now) {
        this.o.metrics.get('lease_expiries_total').inc({ worker_role: t.role.toLowerCase() });
        const old = t.holder;
        this.requeue(t, 'lease expired');
        old?.send({ cancel_task: { task_id: t.id, reason: 'lease expired' } }).catch(() => undefined);
      }
    }
    this.pump();
  }

  private requeue(t: Task, _reason: string): void {
    this.active.delete(t.id);
    this.o.metrics.get('redispatches_total').inc({ worker_role: t.role.toLowerCase() });
    t.holder = undefined;
    t.deadline = undefined;
    if (t.attempt >= this.o.maxAttempts) {
      this.o.onGiveUp(t, _reason);
      return;
    }
    this.queue.unshift(t);
  }

  /** Hands queued tasks to the least-loaded workers of their role that have room. */
  pump(): void {
    for (let i = 0; i < this.queue.length; ) {
      const t = this.queue[i];
      const worker = this.pick(t.role);
      if (!worker) {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      t.attempt += 1;
      t.holder = worker;
      t.dispatchedAt = Date.now();
      t.deadline = t.dispatchedAt + this.o.leaseMs;
      this.active.set(t.id, t);
      this.o.metrics.get('tasks_dispatched_total').inc({ worker_role: t.role.toLowerCase() });
      worker.send(t.message(t.attempt, this.o.leaseMs)).catch((e: Error) => {
        if (this.active.get(t.id) === t && t.holder === worker) this.requeue(t, `send failed: ${e.message}`);
      });
    }
    for (const [role, queue] of [['ROLLOUT', 'rollout'], ['REWARD', 'score']] as const) {
      this.o.metrics.get('queue_depth').set({ queue }, this.queue.filter((t) => t.role === role).length);
    }
  }

  private load(s: WorkerSession): number {
    let n = 0;
    for (const t of this.active.values()) if (t.holder === s) n++;
    return n;
  }

  private pick(role: WorkerRole): WorkerSession | undefined {
    let best: WorkerSession | undefined;
    let bestLoad = Infinity;
    for (const s of this.sessions) {
      if (s.role !== role || !s.isOpen) continue;
      const load = this.load(s);
      const room = Math.max(1, s.hello.capabilities?.max_in_flight ?? 1);
      if (load < room && load < bestLoad) {
        best = s;
        bestLoad = load;
      }
    }
    return best;
  }

  get pending(): number {
    return this.queue.length + this.active.size;
  }

  /** Drops every task matching `pred` (queued or active), e.g. when its batch is abandoned. */
  cancelWhere(pred: (t: Task) => boolean): void {
    for (let i = this.queue.length - 1; i >= 0; i--) if (pred(this.queue[i])) this.queue.splice(i, 1);
    for (const [id, t] of this.active) if (pred(t)) this.active.delete(id);
  }
}
