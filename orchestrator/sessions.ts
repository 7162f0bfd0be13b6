// The workers connected to the orchestrator: the registry behind /health and the workers_connected gauge,
// the broadcast shutdown, and the lease timer that hands expired tasks to other workers.
import type { Metrics } from '../lib/metrics/index.ts';
import type { WorkerSession } from '../lib/transport/index.ts';
import type { TaskBoard } from './task-board.ts';

const ROLES = ['ROLLOUT', 'REWARD', 'LEARNER'] as const;

/** The device a worker runs its graphs on, as its Capabilities name it (its --device: docs/gpu.md). */
export function deviceOf(s: WorkerSession): string {
  return s.hello.capabilities.device;
}

/** Tells a worker to stop (Shutdown, with the grace it has to finish): the run is over. */
export function shutdown(s: WorkerSession, reason: string): void {
  void s.send({ shutdown: { reason, grace_ms: 2000 } }).catch(() => undefined);
}

export class WorkerSessions {
  private readonly open = new Set<WorkerSession>();
  private readonly leaseTimer: NodeJS.Timeout;

  constructor(private readonly metrics: Metrics, board: TaskBoard, leaseCheckMs = 1000) {
    this.leaseTimer = setInterval(() => board.expireLeases(), leaseCheckMs);
    this.leaseTimer.unref();
    this.updateGauge(); // zero for every role until one connects, so "no workers" alerts can fire
  }

  /** Registers a session; `onClosed` runs when its stream ends. */
  track(s: WorkerSession, onClosed: (s: WorkerSession) => void): void {
    this.open.add(s);
    void s.closed.then(() => {
      this.open.delete(s);
      onClosed(s);
      this.updateGauge();
    });
    this.updateGauge();
  }

  get workers(): Array<{ role: string; workerId: string; device: string }> {
    return [...this.open].map((s) => ({ role: s.role, workerId: s.workerId, device: deviceOf(s) }));
  }

  updateGauge(): void {
    for (const role of ROLES) {
      const n = [...this.open].filter((s) => s.role === role && s.isOpen).length;
      this.metrics.get('workers_connected').set({ worker_role: role.toLowerCase() }, n);
    }
  }

  /** Closes every open session of `role` with worker id `workerId` with `code` and `reason` (the worker sees both). */
  failWorker(role: WorkerSession['role'], workerId: string, code: number, reason: string): void {
    for (const s of this.open) if (s.role === role && s.workerId === workerId && s.isOpen) s.fail(code, reason);
  }

  shutdownAll(reason: string): void {
    for (const s of this.open) shutdown(s, reason);
  }

  close(): void {
    clearInterval(this.leaseTimer);
  }
}
