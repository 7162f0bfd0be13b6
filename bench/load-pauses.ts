// Where the load bench's latency tail comes from, per process: event-loop delays (perf_hooks
// monitorEventLoopDelay: how late a 1 ms timer fired, i.e. how long the loop was busy or descheduled) and
// garbage-collection pauses on the main thread (PerformanceObserver 'gc'). The orchestrator side (bench/load.bench.ts)
// and the simulated workers' process (bench/load-workers.ts) each keep one and report the measured window.
import { monitorEventLoopDelay, PerformanceObserver, constants, type IntervalHistogram } from 'node:perf_hooks';

export interface PauseFigures {
  /** Event-loop delay over the window (ms): median, p99, max. */
  loopP50Ms: number;
  loopP99Ms: number;
  loopMaxMs: number;
  /** Main-thread GC pauses in the window: scavenges (minor) and the rest (mark-compact, incremental steps, weak callbacks). */
  minorCount: number;
  minorMs: number;
  minorMaxMs: number;
  majorCount: number;
  majorMs: number;
  majorMaxMs: number;
}

export class PauseMonitor {
  private loop: IntervalHistogram = monitorEventLoopDelay({ resolution: 1 });
  private readonly gc = { minorCount: 0, minorMs: 0, minorMaxMs: 0, majorCount: 0, majorMs: 0, majorMaxMs: 0 };
  private readonly obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
        this.gc.minorCount++;
        this.gc.minorMs += e.duration;
        this.gc.minorMaxMs = Math.max(this.gc.minorMaxMs, e.duration);
      } else {
        this.gc.majorCount++;
        this.gc.majorMs += e.duration;
        this.gc.majorMaxMs = Math.max(this.gc.majorMaxMs, e.duration);
      }
    }
  });

  /** Starts a window (clears what was seen before). */
  start(): void {
    this.loop.disable();
    this.loop = monitorEventLoopDelay({ resolution: 1 });
    this.loop.enable();
    Object.assign(this.gc, { minorCount: 0, minorMs: 0, minorMaxMs: 0, majorCount: 0, majorMs: 0, majorMaxMs: 0 });
    this.obs.disconnect();
    this.obs.observe({ entryTypes: ['gc'] });
  }

  /** Ends the window and returns its figures. */
  stop(): PauseFigures {
    this.loop.disable();
    this.obs.disconnect();
    const ms = (ns: number) => ns / 1e6;
    return { loopP50Ms: ms(this.loop.percentile(50)), loopP99Ms: ms(this.loop.percentile(99)), loopMaxMs: ms(this.loop.max), ...this.gc };
  }
}

export function formatPauses(p: PauseFigures | undefined): string {
  if (!p) return 'n/a';
  return `loop delay p50 ${p.loopP50Ms.toFixed(1)} / p99 ${p.loopP99Ms.toFixed(1)} / max ${p.loopMaxMs.toFixed(0)} ms, ` +
    `GC ${p.minorCount} scavenges ${p.minorMs.toFixed(0)} ms (max ${p.minorMaxMs.toFixed(1)}), ${p.majorCount} other ${p.majorMs.toFixed(0)} ms (max ${p.majorMaxMs.toFixed(1)})`;
}

/**
 * Several processes' figures as one: the worst event-loop delays (a process's p99 is not a percentile of the union,
 * so the largest of them stands for it), the GC pauses summed, their maxima the largest.
 */
export function mergePauses(each: (PauseFigures | undefined)[]): PauseFigures | undefined {
  const known = each.filter((p): p is PauseFigures => p !== undefined);
  if (known.length === 0) return undefined;
  const max = (k: keyof PauseFigures) => Math.max(...known.map((p) => p[k]));
  const sum = (k: keyof PauseFigures) => known.reduce((a, p) => a + p[k], 0);
  return {
    loopP50Ms: max('loopP50Ms'), loopP99Ms: max('loopP99Ms'), loopMaxMs: max('loopMaxMs'),
    minorCount: sum('minorCount'), minorMs: sum('minorMs'), minorMaxMs: max('minorMaxMs'),
    majorCount: sum('majorCount'), majorMs: sum('majorMs'), majorMaxMs: max('majorMaxMs'),
  };
}
