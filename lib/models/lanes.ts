// Several graph calls of one model at once, one per core: onnxruntime-node runs a graph synchronously on the
// calling thread, so two Runs on one session never overlap, and one session's thread pool left the SSIM
// graph on one core in practice (docs/performance.md, "SSIM"). A SessionLanes holds one GraphSession (on the
// calling thread, or in a worker thread as its thread mode says: the roles' --graph-thread) and `lanes - 1` more
// sessions in worker threads (lib/graph/graph-thread.ts), each with one thread per operator, and runs the slices of
// a batch on whichever lane is free. Every slice is the same slice of the batch whichever lane runs it, and results
// do not depend on the thread count (test/models/threads.test.ts), so the values are those of running the slices one
// after another.
import { availableParallelism } from 'node:os';
import type { Feed, Fetches } from '../graph/runtime.ts';
import { GraphSession, intraOpThreads, sessionOptions } from '../graph/runtime.ts';
import { GraphThread } from '../graph/graph-thread.ts';

/**
 * A worker lane's options: one thread per operator, and onnxruntime's memory pattern kept (unlike sessionOptions): a
 * lane runs one shape all run, and its CPU in `npm run bench models` was not shown to gain without it (round 10).
 */
const LANE_OPTIONS = { ...sessionOptions('cpu', 1), enableMemPattern: true };

/** Lanes for `threads` (0: one per core, as intraOpThreads()). */
export function lanesFor(threads = intraOpThreads()): number {
  return threads === 0 ? availableParallelism() : threads;
}

/** Items [start, start + m) of `feeds`, each [n, ...]: views, no copies (the whole feeds when m = n). */
export function sliceFeeds(feeds: Record<string, Feed>, n: number, start: number, m: number): Record<string, Feed> {
  const part: Record<string, Feed> = {};
  for (const [name, f] of Object.entries(feeds)) {
    const per = f.data.length / n;
    part[name] = { data: m === n ? f.data : f.data.subarray(start * per, (start + m) * per), dims: [m, ...f.dims.slice(1)] };
  }
  return part;
}

export class SessionLanes {
  private constructor(
    private readonly main: GraphSession,
    private readonly workers: GraphThread[],
  ) {}

  /**
   * `lanes` sessions of `model` on the CPU (default lanesFor(): the process's --threads, one per core when
   * 0), one thread per operator each. One lane is a single GraphSession with the process's
   * threads per operator, and no worker thread of its own (the GraphSession may be one: --graph-thread).
   */
  static async create(model: Uint8Array, lanes = lanesFor(), name?: string): Promise<SessionLanes> {
    if (!Number.isInteger(lanes) || lanes < 1) throw new Error(`SessionLanes: lanes must be an integer >= 1, got ${lanes}`);
    const started = await Promise.allSettled([
      GraphSession.create(model, { device: 'cpu', ...(lanes > 1 ? { intraOpThreads: 1 } : {}), ...(name !== undefined ? { name } : {}) }),
      ...Array.from({ length: lanes - 1 }, () => GraphThread.create(model, LANE_OPTIONS, name)),
    ]);
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) {
      // the lanes that did start are released, not left holding their sessions and threads
      await Promise.all(started.map((r) => (r.status === 'fulfilled' ? r.value.release() : undefined)));
      throw failed.reason;
    }
    const [main, ...workers] = started.map((r) => (r as PromiseFulfilledResult<GraphSession | GraphThread>).value);
    return new SessionLanes(main as GraphSession, workers as GraphThread[]);
  }

  get lanes(): number {
    return 1 + this.workers.length;
  }

  /**
   * Runs items [start, start + m) of every feed (batch-major, the same item count n) for each slice
   * start = 0, step, 2 step, ... and returns each slice's outputs in order.
   */
  async runSlices(feeds: Record<string, Feed>, n: number, step: number, outputs?: readonly string[]): Promise<Fetches[]> {
    const starts: number[] = [];
    for (let s = 0; s < n; s += step) starts.push(s);
    const results: Fetches[] = new Array(starts.length);
    let next = 0;
    const loop = async (run: (start: number, m: number) => Promise<Fetches>) => {
      while (next < starts.length) {
        const k = next++;
        results[k] = await run(starts[k]!, Math.min(step, n - starts[k]!));
      }
    };
    // A lane in a worker thread gets two loops, so it has its next slice queued while the main thread is inside a
    // (synchronous) run of its own and cannot hand one over; so does the main lane when it is a thread too.
    const mainRun = (start: number, m: number) => this.main.run(sliceFeeds(feeds, n, start, m), outputs);
    const loops = [loop(mainRun)];
    if (starts.length > 1 && this.main.threaded) loops.push(loop(mainRun));
    if (starts.length > 1) {
      for (const w of this.workers) for (let twice = 0; twice < 2; twice++) loops.push(loop((start, m) => w.run(sliceFeeds(feeds, n, start, m), outputs)));
    }
    await Promise.all(loops);
    return results;
  }

  async release(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.release()));
    await this.main.release();
  }
}
