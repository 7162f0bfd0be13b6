// Several graph calls of one model at once, one per core: onnxruntime-node runs a graph synchronously on the
// calling thread, so two Runs on one session never overlap, and one session's thread pool left the SSIM
// graph on one core in practice (docs/performance.md, "SSIM"). A SessionLanes holds one session on the main
// thread and `lanes - 1` more in worker threads (lib/models/lane-worker.mjs), each with one thread per
// operator, and runs the slices of a batch on whichever lane is free. Every slice is the same slice of the
// batch whichever lane runs it, and results do not depend on the thread count (test/models/threads.test.ts),
// so the values are those of running the slices one after another.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Feed, Fetches } from '../graph/runtime.ts';
import { GraphSession, intraOpThreads } from '../graph/runtime.ts';

interface Reply {
  id?: number;
  ready?: boolean;
  out?: Fetches;
  error?: string;
  /** The slot's input buffer, back from the worker. */
  buffer?: ArrayBuffer;
}

class WorkerLane {
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private failure: Error | undefined;
  readonly ready: Promise<void>;
  private readonly worker: Worker;

  constructor(model: Uint8Array) {
    this.worker = new Worker(new URL('./lane-worker.mjs', import.meta.url), { workerData: { model } });
    this.worker.unref(); // referenced only while a run is pending
    this.ready = new Promise((resolve, reject) => {
      this.worker.on('message', (m: Reply) => {
        if (m.ready) return resolve();
        const p = this.pending.get(m.id!);
        if (!p) return;
        this.pending.delete(m.id!);
        if (this.pending.size === 0) this.worker.unref();
        p.resolve(m);
      });
      const fail = (e: Error) => {
        this.failure = e;
        reject(e);
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
      };
      this.worker.on('error', fail);
      this.worker.on('exit', (code) => fail(new Error(`graph lane worker exited (code ${code})`)));
    });
    this.ready.catch(() => {}); // reported by the run that awaits it
  }

  /** Input buffer of each slot (a slot: one queued or running slice), handed to the worker and back. */
  private readonly slots: ArrayBuffer[] = [];

  /**
   * Runs items [start, start + m) of `feeds` in the worker: they are copied into slot `slot`'s buffer,
   * which is transferred to the worker and comes back with the reply (one memcpy into pages already
   * mapped, not a fresh buffer per slice). A slot is reused only after its previous run has returned.
   */
  async run(slot: number, feeds: Record<string, Feed>, n: number, start: number, m: number, outputs: readonly string[] | undefined): Promise<Fetches> {
    await this.ready;
    if (this.failure) throw this.failure;
    const entries = Object.entries(feeds);
    const need = entries.reduce((a, [, f]) => a + (f.data.length / n) * m, 0) * 4;
    let buffer = this.slots[slot];
    if (!buffer || buffer.byteLength < need) buffer = new ArrayBuffer(need);
    const placed: Record<string, { offset: number; length: number; dims: number[] }> = {};
    let offset = 0;
    for (const [name, f] of entries) {
      const per = f.data.length / n;
      new Float32Array(buffer, offset, per * m).set(f.data.subarray(start * per, (start + m) * per));
      placed[name] = { offset, length: per * m, dims: [m, ...f.dims.slice(1)] };
      offset += per * m * 4;
    }
    const id = this.nextId++;
    const reply = await new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ kind: 'run', id, buffer, feeds: placed, outputs }, [buffer]);
    });
    this.slots[slot] = reply.buffer!;
    if (reply.error !== undefined) throw new Error(reply.error);
    return reply.out!;
  }

  async close(): Promise<void> {
    if (this.failure) return;
    this.worker.removeAllListeners('exit');
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.ref();
    this.worker.postMessage({ kind: 'close' });
    await exited;
  }
}

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
    private readonly workers: WorkerLane[],
  ) {}

  /**
   * `lanes` sessions of `model` on the CPU (default lanesFor(): the process's --threads, one per core when
   * 0), one thread per operator each. One lane is a single session on the main thread with the process's
   * threads per operator, and no worker thread.
   */
  static async create(model: Uint8Array, lanes = lanesFor()): Promise<SessionLanes> {
    if (!Number.isInteger(lanes) || lanes < 1) throw new Error(`SessionLanes: lanes must be an integer >= 1, got ${lanes}`);
    const workers = Array.from({ length: lanes - 1 }, () => new WorkerLane(model));
    const main = await GraphSession.create(model, { device: 'cpu', ...(lanes > 1 ? { intraOpThreads: 1 } : {}) });
    return new SessionLanes(main, workers);
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
    const mainRun = (start: number, m: number) => this.main.run(sliceFeeds(feeds, n, start, m), outputs);
    const loops = [loop(mainRun)];
    // Each worker gets two loops (two slots), so it has its next slice queued while the main thread is
    // inside a (synchronous) run of its own and cannot hand one over.
    if (starts.length > 1) {
      for (const w of this.workers) for (const slot of [0, 1]) loops.push(loop((start, m) => w.run(slot, feeds, n, start, m, outputs)));
    }
    await Promise.all(loops);
    return results;
  }

  async release(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
    await this.main.release();
  }
}
