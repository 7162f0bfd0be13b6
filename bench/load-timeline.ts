// When the load bench's tail happens (LOAD_TIMELINE=1, bench/load.bench.ts): every completed task of the measured
// window (its offer, dispatch and result times, and which simulated worker answered it) in preallocated arrays, and
// each process's stalls (GC pauses and event-loop gaps, with their start times) on one clock (epoch ms:
// performance.timeOrigin + now, comparable across the orchestrator's and the workers' processes). At the end: the
// p99 and max per 100 ms of the window, and for the slow tasks which worker process and which workers held them and
// what each process was doing then. A p99 that is one burst names its cause here; steady queueing shows in every bin.
import { readFileSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';

/** A stall of one process: a GC pause or a gap in a 1 ms timer's firing. */
export interface Stall {
  /** Epoch ms when it began. */
  at: number;
  ms: number;
  what: string;
}

/**
 * The main thread's time on a run queue so far (ms; /proc/<pid>/task/<pid>/schedstat's second field: runnable but not
 * running, i.e. another process or thread had the core), NaN without /proc.
 */
export function runQueueMs(): number {
  try {
    return Number(readFileSync(`/proc/${process.pid}/task/${process.pid}/schedstat`, 'utf8').split(' ')[1]) / 1e6;
  } catch {
    return NaN;
  }
}

/** Epoch milliseconds on a clock shared by the bench's processes. */
export const epochNow = (): number => performance.timeOrigin + performance.now();

/**
 * Records this process's stalls over a window: GC pauses (PerformanceObserver 'gc', kind named) and event-loop gaps
 * over `gapMs` (a 1 ms interval timer that fired late: the loop was busy or the process descheduled).
 */
export class StallRecorder {
  private readonly stalls: Stall[] = [];
  private tick: NodeJS.Timeout | undefined;
  private readonly obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
      this.stalls.push({ at: performance.timeOrigin + e.startTime, ms: e.duration, what: kind === 1 ? 'scavenge' : kind === 2 ? 'mark-compact' : kind === 4 ? 'incremental' : kind === 8 ? 'weak' : `gc ${kind}` });
    }
  });

  constructor(private readonly gapMs = 4) {}

  start(): void {
    this.stalls.length = 0;
    this.obs.observe({ entryTypes: ['gc'] });
    // The run-queue wait read every 10 ticks and at each gap: a gap's wait is what accrued since the last reading
    // (at most ~10 ms before the gap began), the part of the gap the main thread was runnable and not running.
    let last = performance.now();
    let queued = runQueueMs();
    let ticks = 0;
    this.runQueue0 = queued;
    this.tick = setInterval(() => {
      const now = performance.now();
      if (now - last > this.gapMs) {
        const q = runQueueMs();
        this.stalls.push({ at: performance.timeOrigin + last, ms: now - last, what: `loop gap (${(q - queued).toFixed(0)} ms on the run queue)` });
        queued = q;
        ticks = 0;
      } else if (++ticks >= 10) {
        queued = runQueueMs();
        ticks = 0;
      }
      last = now;
    }, 1);
  }

  private runQueue0 = NaN;

  /** The main thread's run-queue wait since start() (ms). */
  runQueueSinceStart(): number {
    return runQueueMs() - this.runQueue0;
  }

  stop(): Stall[] {
    this.obs.disconnect();
    clearInterval(this.tick);
    return this.stalls.slice();
  }
}

/** The window's completed tasks, in preallocated arrays (nothing allocated per task). */
export class TaskTimeline {
  private readonly offered: Float64Array;
  private readonly dispatched: Float64Array;
  private readonly done: Float64Array;
  private readonly worker: Int32Array;
  n = 0;
  constructor(capacity: number) {
    this.offered = new Float64Array(capacity);
    this.dispatched = new Float64Array(capacity);
    this.done = new Float64Array(capacity);
    this.worker = new Int32Array(capacity);
  }

  /** Times in this process's performance.now() ms; worker = the simulated worker's number. */
  add(offeredAt: number, dispatchedAt: number, doneAt: number, worker: number): void {
    if (this.n >= this.done.length) return;
    this.offered[this.n] = offeredAt;
    this.dispatched[this.n] = dispatchedAt;
    this.done[this.n] = doneAt;
    this.worker[this.n] = worker;
    this.n++;
  }

  /**
   * Report lines: per `binMs` of the window (by result time) the tasks, p99 and max latency; then the tasks over
   * `slowMs`: how many per workers' process (`procOf`), how many distinct workers, their queue and round-trip parts;
   * then each process's stalls over 3 ms that overlap the slow tasks' span.
   */
  report(o: { startMs: number; binMs: number; slowMs: number; procOf: (worker: number) => number; stalls: Map<string, Stall[]>; instants: Map<string, number[]> }): string[] {
    const out: string[] = [];
    const bins = new Map<number, number[]>();
    for (let i = 0; i < this.n; i++) {
      const b = Math.floor((this.done[i]! - o.startMs) / o.binMs);
      let l = bins.get(b);
      if (!l) bins.set(b, (l = []));
      l.push(this.done[i]! - this.offered[i]!);
    }
    const cells: string[] = [];
    for (const [b, l] of [...bins].sort((x, y) => x[0] - y[0])) {
      l.sort((x, y) => x - y);
      cells.push(`${((b * o.binMs) / 1000).toFixed(1)}s ${l.length} p99 ${l[Math.min(l.length - 1, Math.floor(0.99 * l.length))]!.toFixed(1)} max ${l[l.length - 1]!.toFixed(0)}`);
    }
    for (let k = 0; k < cells.length; k += 5) out.push(`    timeline (per ${o.binMs} ms, by result time): ${cells.slice(k, k + 5).join(' | ')}`);
    const slow: number[] = [];
    for (let i = 0; i < this.n; i++) if (this.done[i]! - this.offered[i]! > o.slowMs) slow.push(i);
    if (slow.length === 0) {
      out.push(`    no task over ${o.slowMs} ms`);
      return out;
    }
    const byProc = new Map<number, number>();
    const workers = new Set<number>();
    let first = Infinity;
    let last = -Infinity;
    let queueMax = 0;
    let rttMax = 0;
    for (const i of slow) {
      const p = o.procOf(this.worker[i]!);
      byProc.set(p, (byProc.get(p) ?? 0) + 1);
      workers.add(this.worker[i]!);
      first = Math.min(first, this.dispatched[i]!);
      last = Math.max(last, this.done[i]!);
      queueMax = Math.max(queueMax, this.dispatched[i]! - this.offered[i]!);
      rttMax = Math.max(rttMax, this.done[i]! - this.dispatched[i]!);
    }
    const rel = (t: number) => `${((t - o.startMs) / 1000).toFixed(3)}s`;
    out.push(`    ${slow.length} tasks over ${o.slowMs} ms (${((100 * slow.length) / this.n).toFixed(2)}%), by workers' process ${[...byProc].sort((a, b) => a[0] - b[0]).map(([p, c]) => `${p + 1}: ${c}`).join(', ')}; ${workers.size} distinct workers; dispatched from ${rel(first)} to results by ${rel(last)}; queue part max ${queueMax.toFixed(1)} ms, round trip max ${rttMax.toFixed(1)} ms`);
    // The slow tasks' episodes: runs of slow results no more than 50 ms apart.
    const order = slow.slice().sort((a, b) => this.dispatched[a]! - this.dispatched[b]!);
    let ep: number[] = [];
    const episodes: number[][] = [];
    for (const i of order) {
      if (ep.length && this.dispatched[i]! - this.dispatched[ep[ep.length - 1]!]! > 50) {
        episodes.push(ep);
        ep = [];
      }
      ep.push(i);
    }
    if (ep.length) episodes.push(ep);
    const culprits: string[] = [];
    const offset = performance.timeOrigin;
    // Each episode's culprit: the process whose stalls (>= 3 ms) add up to the most time over the episode's span.
    const blame = new Map<string, number>();
    episodes.forEach((e, k) => {
      const d0 = Math.min(...e.map((i) => this.dispatched[i]!));
      const d1 = Math.max(...e.map((i) => this.done[i]!));
      let worst = 'none';
      let worstMs = 0;
      for (const [name, list] of o.stalls) {
        let ms = 0;
        for (const s of list) if (s.ms >= 3 && s.at - offset + s.ms >= d0 - 5 && s.at - offset <= d1) ms += s.ms;
        if (ms > worstMs) [worst, worstMs] = [name, ms];
      }
      blame.set(worst, (blame.get(worst) ?? 0) + e.length);
      culprits[k] = `${worst} (${worstMs.toFixed(0)} ms stalled)`;
    });
    out.push(`    slow tasks by the most stalled process of their episode: ${[...blame].map(([n, c]) => `${n} ${c}`).join(', ')}`);
    for (const [k, e] of episodes.slice(0, 12).entries()) {
      const d0 = Math.min(...e.map((i) => this.dispatched[i]!));
      const d1 = Math.max(...e.map((i) => this.done[i]!));
      const procs = new Map<number, number>();
      for (const i of e) procs.set(o.procOf(this.worker[i]!), (procs.get(o.procOf(this.worker[i]!)) ?? 0) + 1);
      const ws = new Set(e.map((i) => this.worker[i]!));
      const during: string[] = [];
      for (const [name, list] of o.stalls) {
        for (const s of list) {
          const a = s.at - offset;
          if (s.ms >= 3 && a + s.ms >= d0 - 5 && a <= d1) during.push(`${name} ${s.what} ${s.ms.toFixed(1)} ms at ${rel(a)}`);
        }
      }
      const near: string[] = [];
      for (const [name, list] of o.instants) {
        const c = list.filter((t) => t - offset >= d0 - 20 && t - offset <= d1).length;
        if (c) near.push(`${c} ${name}`);
      }
      out.push(`    episode ${rel(d0)}-${rel(d1)}: ${e.length} slow tasks (max ${Math.max(...e.map((i) => this.done[i]! - this.offered[i]!)).toFixed(0)} ms), process ${[...procs].map(([p, c]) => `${p + 1}: ${c}`).join(', ')}, ${ws.size} workers; most stalled ${culprits[k]}; stalls then: ${during.join('; ') || 'none >= 3 ms'}${near.length ? `; from 20 ms before: ${near.join(', ')}` : ''}`);
    }
    if (episodes.length > 12) out.push(`    (${episodes.length - 12} more episodes)`);
    return out;
  }
}
