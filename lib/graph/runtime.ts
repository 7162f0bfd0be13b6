// onnxruntime-node sessions for the project's graphs: one place that picks the execution provider and
// converts between plain typed arrays and ORT tensors.

import * as ort from 'onnxruntime-node';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { readdirSync, readFileSync } from 'node:fs';

import type { Device } from './device.ts';
import { SetupError } from '../config/setup-error.ts';
import { GraphThread } from './graph-thread.ts';

/** What a GPU provider needs when it cannot start: appended to the error that names the device. */
const DEVICE_NEEDS: Record<Exclude<Device, 'cpu'>, string> = {
  webgpu: 'it needs a GPU with a Vulkan driver and the Vulkan loader libvulkan.so.1 (Debian: libvulkan1)',
  cuda: "it needs onnxruntime-node's CUDA provider (ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci), CUDA 12 and cuDNN 9",
};

/**
 * $RECOVERY_GRPO_ORT_PROFILE=DIR: every session of the process writes onnxruntime's profile (each node's kernel time
 * and the provider it ran on) into DIR when it is released. For diagnosis (`npm run gpu-check` reads it); it costs
 * time on every run.
 */
export const PROFILE_ENV = 'RECOVERY_GRPO_ORT_PROFILE';
let profiled = 0;

/** An event of onnxruntime's profile: a node's kernel run is cat 'Node', name '<node>_kernel_time'. */
export interface ProfileEvent {
  cat: string;
  name: string;
  /** Microseconds. */
  dur: number;
  args?: { op_name?: string; provider?: string; input_type_shape?: Array<Record<string, number[]>>; output_type_shape?: Array<Record<string, number[]>> };
}

/** The events of every profile that sessions wrote into `dir` ($RECOVERY_GRPO_ORT_PROFILE), file after file. */
export function readProfiles(dir: string): ProfileEvent[] {
  return readdirSync(dir).filter((f) => f.endsWith('.json')).flatMap((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as ProfileEvent[]);
}

export interface Feed {
  data: Float32Array;
  dims: readonly number[];
}
export type Feeds = Record<string, Feed>;
export type Fetches = Record<string, Feed>;

export interface SessionOptions {
  device?: Device;
  /** Threads for one operator; 0: one per core (availableParallelism()). Default: intraOpThreads(). */
  intraOpThreads?: number;
  /** Where the graph runs: a worker thread (lib/graph/graph-thread.ts), the calling thread, or 'auto'. Default: graphThreads(). */
  thread?: GraphThreadMode;
  /** auto's bound on a call on the calling thread, ms. Default GRAPH_THREAD_AFTER_MS. */
  threadAfterMs?: number;
  /** Which graph this is ('policy', 'reward backprop'), for messages such as a graph thread's unasked end. Default: its outputs. */
  name?: string;
}

export const THREADS_ENV = 'RECOVERY_GRPO_THREADS';

function checkThreads(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0) throw new Error(`${what}: onnxruntime threads per operator must be an integer >= 0 (0: one per core), got ${n}`);
  return n;
}

let processThreads: number | undefined;

/**
 * Sets the threads per operator of every session this process creates from now on. Each worker role is
 * its own process (--threads), so this is the per-role setting: on a shared machine the learner's,
 * rollout workers' and reward workers' pools would otherwise each take every core. Results do not
 * depend on it (test/models/threads.test.ts).
 */
export function setIntraOpThreads(n: number): void {
  processThreads = checkThreads(n, '--threads');
}

export const GRAPH_THREAD_ENV = 'RECOVERY_GRPO_GRAPH_THREAD';
/**
 * Where a session runs its graph. on: a worker thread (lib/graph/graph-thread.ts), so a call never holds the event
 * loop that answers keepalive pings, heartbeats, NATS pings and /metrics, at ~1 ms of hand-off per call on a busy
 * 2-core machine. off: the calling thread. auto: the calling thread until a call holds the event loop longer than
 * GRAPH_THREAD_AFTER_MS, a worker thread from then on (the roles' default: short calls pay nothing, long ones stop
 * holding the loop after their first); CPU sessions only, a GPU session stays where it is.
 */
export type GraphThreadMode = 'on' | 'off' | 'auto';
export const GRAPH_THREAD_MODES: readonly GraphThreadMode[] = ['on', 'off', 'auto'];
/** auto's bound: a tenth of the keepalive timeout (10 s), where a hand-off costs ~0.1% of the call. */
export const GRAPH_THREAD_AFTER_MS = 1000;
let processGraphThread: GraphThreadMode | undefined;

/**
 * The graph thread mode of the sessions this process creates from now on (the roles' --graph-thread, default auto;
 * a library user or test runs them on the calling thread unless it asks). undefined: back to $RECOVERY_GRPO_GRAPH_THREAD.
 */
export function setGraphThreads(mode: GraphThreadMode | undefined): void {
  if (mode !== undefined && !GRAPH_THREAD_MODES.includes(mode)) throw new Error(`--graph-thread: expected one of ${GRAPH_THREAD_MODES.join(', ')}, got '${mode}'`);
  processGraphThread = mode;
}

/** setGraphThreads, else $RECOVERY_GRPO_GRAPH_THREAD (on, off or auto), else off. */
export function graphThreads(): GraphThreadMode {
  if (processGraphThread !== undefined) return processGraphThread;
  const env = process.env[GRAPH_THREAD_ENV];
  if (env === undefined || env === '') return 'off';
  if (!(GRAPH_THREAD_MODES as readonly string[]).includes(env)) throw new Error(`${GRAPH_THREAD_ENV}: expected one of ${GRAPH_THREAD_MODES.join(', ')}, got '${env}'`);
  return env as GraphThreadMode;
}

/** The process's threads per operator: setIntraOpThreads, else $RECOVERY_GRPO_THREADS, else 0 (ORT: one per core). */
export function intraOpThreads(): number {
  if (processThreads !== undefined) return processThreads;
  const env = process.env[THREADS_ENV];
  return env === undefined || env === '' ? 0 : checkThreads(Number(env), THREADS_ENV);
}

/**
 * onnxruntime's options for every GraphSession of the project. lib/models/lanes.ts sets its own for the SSIM lanes
 * and keeps the memory pattern: a lane runs one shape all run long, and its CPU in `npm run bench models` was not
 * shown to gain without it (round 10's coordinator, docs/performance-history.md).
 */
export function sessionOptions(device: Device, intraOpThreads: number): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: device === 'cpu' ? ['cpu'] : [device === 'webgpu' ? { name: 'webgpu', ...webgpuOptions() } : device, 'cpu'],
    graphOptimizationLevel: 'all',
    // 0 means one thread per core, counted here: onnxruntime's own count for 0 (its physical cores) gave ONE thread on
    // the 2-core development VM, so every process that did not pass --threads ran its graphs on one core
    // (docs/performance-history/pipeline.md, "Round 15: threads15").
    intraOpNumThreads: intraOpThreads === 0 ? availableParallelism() : intraOpThreads,
    // No memory pattern: with it, the second run of each input shape allocates the block it planned from the first
    // and faults those pages in afresh, so the GRPO step's second run cost ~4x a later one (~270 ms more CPU at
    // 32 px, in the learner and in the single-process loop alike; docs/performance-history/pipeline.md "Round 10: pipe10"); the
    // arena alone reuses the first run's memory. Where a tensor lives does not change its values.
    enableMemPattern: false,
    // Several processes share the cores (rollout, reward, learner): idle threads must not spin.
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
}

/**
 * $RECOVERY_GRPO_WEBGPU=key=value,...: options for onnxruntime-node's WebGPU provider, e.g.
 * `preferredLayout=NCHW,storageBufferCacheMode=disabled` (the names onnxruntime-node's binding accepts:
 * preferredLayout, validationMode, storageBufferCacheMode, uniformBufferCacheMode, queryResolveBufferCacheMode,
 * defaultBufferCacheMode, enableRobustness). For diagnosis with `npm run gpu-check` (docs/gpu.md).
 */
export const WEBGPU_ENV = 'RECOVERY_GRPO_WEBGPU';
const WEBGPU_KEYS = ['preferredLayout', 'validationMode', 'storageBufferCacheMode', 'uniformBufferCacheMode', 'queryResolveBufferCacheMode', 'defaultBufferCacheMode', 'enableRobustness'];

/**
 * The WebGPU provider's options: the project's defaults, then $RECOVERY_GRPO_WEBGPU's. preferredLayout NCHW: the
 * provider's default, NHWC, runs a 3x3 Conv with 6 input channels 71-102% wrong (the flow velocity network's first
 * layer); with NCHW it agrees with the CPU (docs/gpu.md, round 17).
 */
export function webgpuOptions(env = process.env[WEBGPU_ENV] ?? ''): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = { preferredLayout: 'NCHW' };
  for (const item of env.split(',').filter((s) => s.trim() !== '')) {
    const [key, value, extra] = item.split('=').map((s) => s.trim());
    if (!WEBGPU_KEYS.includes(key) || value === undefined || value === '' || extra !== undefined) {
      throw new Error(`${WEBGPU_ENV}: '${item}' is not key=value with key one of ${WEBGPU_KEYS.join(', ')}`);
    }
    out[key] = key === 'enableRobustness' ? value === 'true' : value;
  }
  return out;
}

export class GraphSession {
  /** Calls in flight on the calling thread's session (auto: it is released only when none is). */
  private readonly onThisThread = new Set<Promise<unknown>>();
  /** auto: the move to a worker thread, once a call held the event loop too long. */
  private moving: Promise<void> | undefined;
  private released = false;

  private constructor(
    /** The session on this thread, or in a worker thread (exactly one of the two). */
    private session: ort.InferenceSession | GraphThread,
    readonly device: Device,
    private readonly profiling: boolean,
    /** auto: what a worker thread needs to make the same session. */
    private auto: { model: Uint8Array; options: ort.InferenceSession.SessionOptions; afterMs: number; name: string | undefined } | undefined,
  ) {}

  static async create(model: Uint8Array, opts: SessionOptions = {}): Promise<GraphSession> {
    const device = opts.device ?? 'cpu';
    const options = sessionOptions(device, checkThreads(opts.intraOpThreads ?? intraOpThreads(), 'intraOpThreads'));
    const profileDir = process.env[PROFILE_ENV];
    if (profileDir) Object.assign(options, { enableProfiling: true, profileFilePrefix: join(profileDir, `graph-${process.pid}-${++profiled}`) });
    const mode = opts.thread ?? graphThreads();
    let session: ort.InferenceSession | GraphThread;
    try {
      session = mode === 'on' ? await GraphThread.create(model, options, opts.name) : await ort.InferenceSession.create(model, options);
    } catch (e) {
      if (device === 'cpu') throw e;
      // onnxruntime's message says whether the provider or the model failed; this names the device and what it needs.
      // A SetupError: the same graph on the same machine fails the same way, so a role ends rather than restarts.
      throw new SetupError(`device ${device}: onnxruntime could not create the session on its ${device} execution provider (${DEVICE_NEEDS[device]}; docs/gpu.md): ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    // auto moves CPU sessions only: a GPU provider's session in a worker thread has not been run on a GPU (no GPU was
    // lent in round 20), and a GPU call is rarely long; `on` puts one there when asked.
    const auto = mode === 'auto' && device === 'cpu' ? { model, options, afterMs: opts.threadAfterMs ?? GRAPH_THREAD_AFTER_MS, name: opts.name } : undefined;
    return new GraphSession(session, device, !!profileDir, auto);
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }
  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Whether the graph runs in a worker thread (with auto: from the call after the first that held the loop too long). */
  get threaded(): boolean {
    return this.session instanceof GraphThread;
  }

  /** Runs the graph; `outputs` restricts what is fetched (all outputs by default). */
  async run(feeds: Feeds, outputs?: readonly string[]): Promise<Fetches> {
    for (const [name, f] of Object.entries(feeds)) {
      const n = f.dims.reduce((a, b) => a * b, 1);
      if (f.data.length !== n) throw new Error(`input ${name}: ${f.data.length} values do not fill shape [${f.dims.join(',')}]`);
    }
    if (this.session instanceof GraphThread) return this.session.run(feeds, outputs);
    const session = this.session;
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, f] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor('float32', f.data, f.dims as number[]);
    const t0 = performance.now();
    const call = outputs ? session.run(ortFeeds, outputs as string[]) : session.run(ortFeeds);
    this.onThisThread.add(call);
    let result: ort.InferenceSession.ReturnType;
    try {
      result = await call;
    } finally {
      this.onThisThread.delete(call);
    }
    if (this.auto && !this.moving && performance.now() - t0 > this.auto.afterMs) this.moving = this.moveToThread(this.auto);
    const out: Fetches = {};
    for (const [name, t] of Object.entries(result)) {
      if (!(t.data instanceof Float32Array)) throw new Error(`output ${name}: expected float32, got ${t.type}`);
      out[name] = { data: t.data, dims: t.dims };
    }
    return out;
  }

  /**
   * auto: the same session in a worker thread takes the calls from now on (the values are the same); the calling
   * thread's is released once the calls already on it have returned. Should the thread not start, the calls stay here.
   */
  private async moveToThread(auto: { model: Uint8Array; options: ort.InferenceSession.SessionOptions; name: string | undefined }): Promise<void> {
    this.auto = undefined;
    let thread: GraphThread;
    try {
      thread = await GraphThread.create(auto.model, auto.options, auto.name);
    } catch {
      return;
    }
    if (this.released) return thread.release();
    const old = this.session as ort.InferenceSession;
    this.session = thread;
    await Promise.allSettled([...this.onThisThread]);
    if (this.profiling) old.endProfiling();
    await old.release();
  }

  async release(): Promise<void> {
    this.released = true;
    await this.moving;
    if (this.session instanceof GraphThread) return this.session.release(); // the thread writes its profile
    await Promise.allSettled([...this.onThisThread]);
    if (this.profiling) this.session.endProfiling(); // writes the profile file
    await this.session.release();
  }
}
