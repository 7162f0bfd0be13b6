// An onnxruntime session in a worker thread (lib/graph/graph-thread-worker.mjs). onnxruntime-node runs a graph
// synchronously on the thread that calls it, so a session on the main thread holds the event loop for the whole
// call: no gRPC keepalive answer, heartbeat, NATS ping or /metrics scrape is read until it returns, and a call
// longer than the keepalive timeout drops a healthy stream (docs/reliability.md). In a worker thread the call runs
// beside the event loop, and several sessions run at once (the SSIM lanes, lib/models/lanes.ts). The values are the
// same: the same onnxruntime, options and inputs (test/graph/graph-thread.test.ts).
import { Worker } from 'node:worker_threads';
import type * as ort from 'onnxruntime-node';
import type { Feeds, Fetches } from './runtime.ts';
import { withTimeout } from '../async/with-timeout.ts';

interface Reply {
  id?: number;
  ready?: boolean;
  inputNames?: string[];
  outputNames?: string[];
  out?: Fetches;
  error?: string;
  /** The call's input buffer, back from the worker. */
  buffer?: ArrayBuffer;
}

/** Every thread not yet ended: a process must not exit while one is inside a run (releaseGraphThreads). */
const live = new Set<GraphThread>();
/** Threads whose session is being created (not yet in `live`): releaseGraphThreads waits for them too. */
const starting = new Set<Promise<unknown>>();
/** Set by exitAfterGraphs: the process is ending, so no new thread starts (it would only hold the exit up). */
let exiting = false;

/**
 * Whether some graph thread may be inside onnxruntime now: a run, its session's creation or its release. Exiting
 * then aborts the process (134); with every thread idle (or none), process.exit is safe.
 */
function graphThreadsBusy(): boolean {
  return starting.size > 0 || [...live].some((t) => t.busy);
}

/**
 * Ends the process at once, without waiting for a graph thread: process.exit(code) when none is inside onnxruntime;
 * else exiting would abort (134), so the process ends by `signal`'s default action, which runs no exit handlers and
 * tears nothing down (a shell or container runtime reports 128 + the signal's number: 130 for SIGINT, 143 for
 * SIGTERM). A second SIGINT / SIGTERM ends a role this way (lib/worker/stop-signals.ts).
 */
export function exitNow(code: number, signal: NodeJS.Signals): never {
  if (!graphThreadsBusy()) process.exit(code);
  process.removeAllListeners(signal); // back to the default action: this process's own handler would stop it again
  process.kill(process.pid, signal);
  // Normally delivered before kill returns. This thread waits (no exit path runs meanwhile, none that would abort);
  // should the signal not end the process within a second, SIGKILL does. As PID 1 of a PID namespace (a container
  // without an init) the kernel drops both, so after another second it exits after all: an abort beats a hang.
  const pause = () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
  pause();
  if (signal !== 'SIGKILL') {
    process.stderr.write(`${signal} did not end the process: SIGKILL\n`);
    process.kill(process.pid, 'SIGKILL');
    pause();
  }
  process.stderr.write(`${signal === 'SIGKILL' ? 'SIGKILL did not end' : 'neither signal ended'} the process (PID 1 of a namespace?): exiting with ${code}\n`);
  process.exit(code);
}

/**
 * Ends the process with `code` once its graph threads have ended (at most `timeoutMs`): exiting while one is inside
 * an onnxruntime run aborts the process with 134 instead of `code`. Should a thread still be inside a run after the
 * bound, the process ends by SIGKILL rather than abort (exitNow). The roles' exits go through it.
 */
export async function exitAfterGraphs(code: number, timeoutMs = 30_000): Promise<never> {
  exiting = true;
  if (!(await releaseGraphThreads(timeoutMs))) process.stderr.write(`graph threads still running ${timeoutMs} ms after their release: ending the process by SIGKILL\n`);
  return exitNow(code, 'SIGKILL');
}

/**
 * Releases every graph thread of the process (each after the runs queued before its release) and waits for them to
 * end, at most `timeoutMs`; true when all ended. Call it before process.exit: exiting while a thread is inside an
 * onnxruntime run aborts the process (Napi::Error, exit code 134), which on the calling thread could not happen (the
 * run held the event loop). The roles' exits go through it (exitAfterGraphs).
 */
async function releaseGraphThreads(timeoutMs: number): Promise<boolean> {
  // threads still creating their session join `live` when created: wait for them, then release again
  const all = async () => {
    while (starting.size > 0 || live.size > 0) {
      await Promise.allSettled([...starting]);
      await Promise.all([...live].map((t) => t.release()));
    }
  };
  return (await withTimeout(all(), timeoutMs)) !== 'timeout';
}

export class GraphThread {
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private failure: Error | undefined;
  /** Set by release: the thread's end (later runs are refused). */
  private exited: Promise<void> | undefined;
  /** Input buffers back from the worker, reused by later calls (one memcpy into pages already mapped). */
  private readonly buffers: ArrayBuffer[] = [];

  private constructor(
    private readonly worker: Worker,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
    /** Which graph, for messages. */
    readonly name: string,
  ) {}

  /** Inside onnxruntime now or soon: a run pending, or the session's release under way (graphThreadsBusy). */
  get busy(): boolean {
    return this.pending.size > 0 || this.exited !== undefined;
  }

  /**
   * Starts the thread and creates the session there; rejects with onnxruntime's message if it cannot. `name` says
   * which graph it is in messages (SessionOptions.name); default: its outputs.
   */
  static async create(model: Uint8Array, options: ort.InferenceSession.SessionOptions, name?: string): Promise<GraphThread> {
    if (exiting) throw new Error(`graph thread${name ? ` of ${name}` : ''}: not started, the process is exiting`);
    const worker = new Worker(new URL('./graph-thread-worker.mjs', import.meta.url), { workerData: { model, options } });
    const created = new Promise<Reply>((resolve, reject) => {
      const exited = (code: number) => reject(new Error(`graph thread${name ? ` of ${name}` : ''} exited (code ${code}) before its session was created`));
      worker.once('error', reject);
      worker.once('exit', exited);
      worker.once('message', (m: Reply) => {
        worker.off('error', reject);
        worker.off('exit', exited);
        resolve(m);
      });
    });
    starting.add(created);
    let ready: Reply;
    try {
      ready = await created;
    } finally {
      starting.delete(created);
    }
    if (ready.error !== undefined) throw new Error(ready.error);
    const thread = new GraphThread(worker, ready.inputNames!, ready.outputNames!, name ?? `the graph with outputs ${ready.outputNames!.join(', ')}`);
    thread.listen();
    live.add(thread);
    return thread;
  }

  private listen(): void {
    this.worker.unref(); // referenced only while a call is pending
    this.worker.on('message', (m: Reply) => {
      const p = this.pending.get(m.id!);
      if (!p) return;
      this.pending.delete(m.id!);
      if (this.pending.size === 0 && !this.exited) this.worker.unref(); // a release holds it until the thread ends
      p.resolve(m);
    });
    // A thread that ends or fails unasked (a native fault, out of memory) ends the process, as the same fault on the
    // calling thread did: a role left running without its graphs would fail every task for ever. Its calls fail with
    // the reason; the process ends with 1 once the other threads have ended (exiting while one is inside a run
    // would abort it, 134, and hide the reason).
    const fail = (e: Error) => {
      live.delete(this);
      if (this.failure) return; // 'error', then 'exit'
      this.failure = e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
      process.stderr.write(`error: ${e.message}; ending the process\n`);
      void exitAfterGraphs(1);
    };
    this.worker.on('error', (e) => fail(new Error(`graph thread of ${this.name} failed: ${e.message}`, { cause: e })));
    this.worker.on('exit', (code) => fail(new Error(`graph thread of ${this.name} exited unexpectedly (code ${code})`)));
  }

  /** Runs the graph in the thread: the feeds are copied there, the outputs come back (transferred, not copied). */
  async run(feeds: Feeds, outputs?: readonly string[]): Promise<Fetches> {
    if (this.failure) throw this.failure;
    if (this.exited) throw new Error('graph thread: run after release');
    const entries = Object.entries(feeds);
    const need = entries.reduce((a, [, f]) => a + f.data.length, 0) * 4;
    const i = this.buffers.findIndex((b) => b.byteLength >= need);
    const buffer = i >= 0 ? this.buffers.splice(i, 1)[0]! : new ArrayBuffer(need);
    const placed: Record<string, { offset: number; length: number; dims: readonly number[] }> = {};
    let offset = 0;
    for (const [name, f] of entries) {
      new Float32Array(buffer, offset, f.data.length).set(f.data);
      placed[name] = { offset, length: f.data.length, dims: f.dims };
      offset += f.data.length * 4;
    }
    const id = this.nextId++;
    const reply = await new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ kind: 'run', id, buffer, feeds: placed, outputs }, [buffer]);
    });
    this.buffers.push(reply.buffer!);
    if (reply.error !== undefined) throw new Error(reply.error);
    return reply.out!;
  }

  /**
   * Releases the session on its thread, after the runs queued before this call, and waits for the thread to end
   * (terminating it would abort the process). Later runs are refused; a second call waits for the same end.
   */
  release(): Promise<void> {
    if (this.failure) return Promise.resolve();
    this.exited ??= (async () => {
      this.worker.removeAllListeners('exit');
      const ended = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
      this.worker.ref();
      this.worker.postMessage({ kind: 'close' });
      await ended;
      live.delete(this);
    })();
    return this.exited;
  }
}
