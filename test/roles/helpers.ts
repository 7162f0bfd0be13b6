// Test helpers for the worker roles: a small hand-written orchestrator over the real gRPC server (it welcomes
// every worker with a run config, lets the test send tasks, and collects what comes back), tiny run configs,
// and checkpoint publishing as a learner would.
import {
  CheckpointStore,
  encodeTensor,
  startOrchestratorServer,
  type TrainBatch,
  type OrchestratorMessage,
  type OrchestratorServer,
  type WorkerMessage__Output,
  type ServerTls,
  type WorkerSession,
} from '../../lib/transport/index.ts';
import { parseConfig, type RunConfig, type RunConfigInput } from '../../lib/config/index.ts';
import { configHash } from '../../lib/checkpoint/digest.ts';
import type { TensorMap } from '../../lib/checkpoint/index.ts';
import { publishCheckpoint } from '../../lib/worker/index.ts';

/** A tiny run: 16x16 images, a 1-block width-4 ResNet, G = 2. */
export function tinyConfig(runId: string, extra: Record<string, Record<string, unknown>> = {}): RunConfigInput {
  return {
    ...extra,
    run: { id: runId, seed: 7, ...extra.run },
    data: { size: 16, ...extra.data },
    model: { width: 4, depth: 1, logStd: Math.log(0.05), ...extra.model },
    grpo: { groupSize: 2, samplesPerBatch: 2, advantageMode: 'scalar', ...extra.grpo },
  } as RunConfigInput;
}

export interface Received {
  session: WorkerSession;
  msg: WorkerMessage__Output;
}

export interface FakeOrchestrator {
  readonly address: string;
  readonly server: OrchestratorServer;
  /** Every non-heartbeat message, in arrival order. */
  readonly received: Received[];
  readonly heartbeats: Received[];
  readonly sessions: WorkerSession[];
  /** The newest open session of a worker (waits for one). */
  session(workerId: string, timeoutMs?: number): Promise<WorkerSession>;
  /** Sends to the newest session of the worker. */
  send(workerId: string, msg: OrchestratorMessage): Promise<void>;
  /** The first message after index `from` (default: any) that matches; waits for it. */
  next(pred: (m: WorkerMessage__Output, s: WorkerSession) => boolean, opts?: { timeoutMs?: number; from?: number }): Promise<WorkerMessage__Output>;
  close(): Promise<void>;
}

export async function startFakeOrchestrator(opts: {
  runId: string;
  config: RunConfigInput;
  policyVersion?: number;
  heartbeatMs?: number;
  token?: string;
  /** Served over TLS (the orchestrator's auth.tls). */
  tls?: ServerTls;
  /** Default 127.0.0.1:0 (a free port). */
  listen?: string;
}): Promise<FakeOrchestrator> {
  const received: Received[] = [];
  const heartbeats: Received[] = [];
  const sessions: WorkerSession[] = [];
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  const server = await startOrchestratorServer({
    heartbeatTimeoutMs: 0,
    ...(opts.listen ? { listen: opts.listen } : {}),
    ...(opts.token || opts.tls ? { auth: { ...(opts.token ? { token: opts.token } : {}), ...(opts.tls ? { tls: opts.tls } : {}) } } : {}),
    onConnect: async (session) => {
      await session.send({
        welcome: {
          run_id: opts.runId,
          config_json: JSON.stringify(opts.config),
          policy_version: opts.policyVersion ?? 0,
          heartbeat_interval_ms: opts.heartbeatMs ?? 200,
        },
      });
      sessions.push(session);
      notify();
      for await (const msg of session.messages) {
        (msg.kind === 'heartbeat' ? heartbeats : received).push({ session, msg });
        notify();
      }
      notify();
    },
  });
  const waitUntil = <T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const v = probe();
        if (v !== undefined) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(v);
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`fake orchestrator: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  const session = (workerId: string, timeoutMs = 15_000) =>
    waitUntil(() => [...sessions].reverse().find((s) => s.workerId === workerId && s.isOpen), timeoutMs, `a session of ${workerId}`);
  return {
    address: `127.0.0.1:${server.port}`,
    server,
    received,
    heartbeats,
    sessions,
    session,
    async send(workerId, msg) {
      await (await session(workerId)).send(msg);
    },
    next(pred, { timeoutMs = 15_000, from = 0 } = {}) {
      return waitUntil(() => received.slice(from).find((r) => pred(r.msg, r.session))?.msg, timeoutMs, 'a matching message');
    },
    close: () => server.close({ graceMs: 500 }),
  };
}

/** Publishes params as checkpoint `version` of the run, as the learner would (no optimizer state). */
export async function publishParams(store: CheckpointStore, config: RunConfig, runId: string, version: number, params: TensorMap) {
  return publishCheckpoint(store, { meta: { runId, version, step: version, lastBatchId: null, configHash: configHash(config) }, params });
}

export function parsed(config: RunConfigInput): RunConfig {
  return parseConfig(config);
}

export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A deterministic [3,H,W] image in [0,1]. */
export function testImage(seed: number, size = 16): Float32Array {
  const out = new Float32Array(3 * size * size);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        out[(c * size + y) * size + x] = 0.5 + 0.4 * Math.sin(0.3 * x * (seed + 1) + 0.2 * y + c);
      }
    }
  }
  return out;
}

/** Test images `seeds` (16x16) stacked into one [n,3,16,16] array. */
export function stackImages(seeds: number[]): Float32Array {
  const per = 3 * 16 * 16;
  const out = new Float32Array(seeds.length * per);
  seeds.forEach((s, i) => out.set(testImage(s), i * per));
  return out;
}

/** `x` with a fixed, deterministic perturbation: the corrupted inputs of the role tests. */
export const noisy = (x: Float32Array): Float32Array => x.map((v, i) => v + 0.1 * Math.sin(i * 78.233));

/** SFT batch `seq` of run `runId`: test images seq..seq+3 as targets, their `noisy` copies as inputs. */
export function sftBatch(runId: string, seq: number): TrainBatch {
  const clean = stackImages([seq, seq + 1, seq + 2, seq + 3]);
  const f32 = (data: Float32Array) => encodeTensor({ dtype: 'float32', shape: [4, 3, 16, 16], data });
  return { batch_id: `${runId}-b${seq}`, batch_seq: seq, kind: 'SFT', lease_ms: 30_000, images: f32(noisy(clean)), targets: f32(clean) };
}
