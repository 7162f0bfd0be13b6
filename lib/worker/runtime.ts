// The one worker runtime every role runs on (rollout worker, reward worker, learner):
//
//   start:   metrics + /health server -> dial the orchestrator (Hello: role, worker id, capabilities, the
//            policy version / last batch seq the role holds) -> Welcome: run id + run config (validated with
//            parseConfig; a worker has no config file of its own) -> connect NATS -> role.init() -> tasks
//   stream:  tasks go to the role (it queues and answers them through ctx.send); CancelTask -> role.cancel;
//            Shutdown -> graceful stop; heartbeats list the role's active task ids (renewing their leases)
//   failure: a retryable stream failure (orchestrator gone, heartbeat timeout, a clean close without Shutdown)
//            -> withReconnect backoff -> Hello again with the current policy version / last batch seq.
//            Non-retryable (bad token, refused Hello, invalid run config, a Welcome for another run): the worker
//            stops and `done` rejects with the reason; a SetupError (a run config it refuses, and at start a
//            device this machine cannot give: lib/graph/device-check.ts) makes the CLI exit CONFIG_EXIT_CODE.
//   stop:    stop() / SIGTERM / SIGINT / Shutdown: the role stops taking tasks and finishes in-flight work
//            within the grace period (then abandons it: the orchestrator re-dispatches on lease expiry), the
//            stream is half-closed, the role releases its sessions, NATS is drained, the metrics server closes.
import { readFileSync } from 'node:fs';
import type { NatsConnection } from 'nats';
import type { Registry } from 'prom-client';
import * as grpc from '@grpc/grpc-js';
import { configHash } from '../checkpoint/digest.ts';
import { parseConfig, type RunConfig } from '../config/index.ts';
import { createMetrics, describeMetricsToken, startMetricsServer, type Metrics, type MetricsServer } from '../metrics/index.ts';
import {
  CertificateExpiryWatch,
  caBundleFiles,
  clientCertificateFiles,
  checkRunId,
  closeNats,
  DEFAULT_MAX_MESSAGE_BYTES,
  connectNats,
  connectToOrchestrator,
  describeNatsAuth,
  isNatsAuthError,
  TransportError,
  withReconnect,
  type Capabilities,
  type OrchestratorConnection,
  type OrchestratorMessage__Output,
  type OrchestratorMessageKind,
  type Welcome__Output,
  type WorkerMessage,
} from '../transport/index.ts';
import { trace, traceRole } from '../log/trace.ts';
import { checkDevice } from '../graph/device-check.ts';
import { onStopSignals } from './stop-signals.ts';
import { SetupError } from '../config/setup-error.ts';
import { WIRE_ROLE, type Logger, type ResolvedWorkerOptions, type RoleName } from './options.ts';
import { withTimeout } from '../async/with-timeout.ts';

export const SOFTWARE_VERSION = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { name?: string; version?: string };
    return `${pkg.name ?? 'recovery-grpo'}/${pkg.version ?? '0'}`;
  } catch {
    return 'recovery-grpo/unknown';
  }
})();

/** A failure that ends the worker (no reconnect): bad configuration, a Welcome for another run, ... */
export class WorkerFatalError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WorkerFatalError';
  }
}

/** A failure worth another connection attempt after a backoff (NATS not up yet, a fetch that timed out, ...). */
export class RetryableWorkerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RetryableWorkerError';
  }
}

/** What a role sees of the runtime once the first Welcome arrived. */
export interface RoleContext {
  readonly role: RoleName;
  readonly workerId: string;
  readonly runId: string;
  readonly config: RunConfig;
  /** configHash(config): recorded in checkpoints. */
  readonly configHash: string;
  readonly welcome: Welcome__Output;
  readonly nc: NatsConnection;
  readonly metrics: Metrics;
  readonly options: ResolvedWorkerOptions;
  readonly log: Logger;
  /** True once stop began: take no new work. */
  readonly stopping: boolean;
  /** Sends on the current stream; false (and nothing sent) when disconnected or the send failed. */
  send(msg: WorkerMessage): Promise<boolean>;
  /** Sends a TaskError. `retryable`: another attempt (maybe on another worker) may succeed. */
  taskError(taskId: string, attempt: number, code: string, message: string, retryable: boolean): Promise<boolean>;
}

export type TaskKind = Extract<OrchestratorMessageKind, 'rollout_task' | 'score_task' | 'train_batch'>;

/** What a role plugs into the runtime. */
export interface WorkerRoleImpl {
  readonly name: RoleName;
  /** The task kind this role does; other task kinds are answered with TaskError 'wrong_role'. */
  readonly taskKind: TaskKind;
  capabilities(): Omit<Capabilities, 'tensor_dtypes'> & { tensor_dtypes?: string[] };
  /** Hello fields describing what the role holds now (sent on every (re)connect). */
  hello(): { policy_version?: number; last_batch_seq?: number };
  /** Policy version for heartbeats; undefined when none is loaded. */
  policyVersion(): number | undefined;
  /** After the first Welcome. Throw RetryableWorkerError to retry on the next connection, anything else is fatal. */
  init(ctx: RoleContext): Promise<void>;
  /** After every later Welcome (a reconnect). */
  reconnected?(welcome: Welcome__Output): void;
  /** A task of `taskKind`. The role answers it (result or TaskError) through ctx.send, in its own time. */
  handle(msg: OrchestratorMessage__Output): void;
  /** CancelTask: forget the task (drop it if queued; a result computed anyway is not needed). */
  cancel(taskId: string, reason: string): void;
  /** Tasks held (queued or running): listed in heartbeats, which renews their leases. */
  activeTaskIds(): string[];
  /** The stream broke: drop queued work of that stream (the orchestrator re-dispatches it). */
  disconnected?(): void;
  /** Take no new tasks; resolve when in-flight work is finished and answered. The runtime bounds the wait. */
  drain(): Promise<void>;
  /** Release sessions, watches. Called once, at the end. */
  close(): Promise<void>;
  /** Extra /health detail. */
  healthDetail?(): Record<string, unknown>;
  /** Ready to work (weights loaded, ...). Default: init done. */
  isReady?(): boolean;
}

export interface WorkerHandle {
  readonly role: RoleName;
  readonly workerId: string;
  /** http://host:port of /metrics and /health. */
  readonly metricsUrl: string;
  /** Resolves after the first Welcome was handled (role initialised); rejects if the worker ended before. */
  readonly ready: Promise<void>;
  /** Resolves once the worker stopped cleanly; rejects with the fatal error that ended it. */
  readonly done: Promise<void>;
  isConnected(): boolean;
  /**
   * The role's metrics as /metrics serves them (empty before the first Welcome). Read from memory: also after the
   * worker stopped and its metrics server closed (a run's end sends every worker Shutdown).
   */
  metricsText(): Promise<string>;
  /** Graceful stop (in-flight work gets `graceMs`, default options.stopGraceMs). Idempotent; never rejects. */
  stop(opts?: { graceMs?: number; reason?: string }): Promise<void>;
}

const TASK_ID_OF: Record<TaskKind, (m: OrchestratorMessage__Output) => { id: string; attempt: number }> = {
  rollout_task: (m) => ({ id: m.rollout_task!.task_id, attempt: m.rollout_task!.attempt }),
  score_task: (m) => ({ id: m.score_task!.task_id, attempt: m.score_task!.attempt }),
  train_batch: (m) => ({ id: m.train_batch!.batch_id, attempt: 0 }),
};

function resultTaskId(msg: WorkerMessage): string | undefined {
  return msg.rollout_result?.task_id ?? msg.score_result?.task_id ?? msg.train_result?.batch_id ?? msg.task_error?.task_id ?? undefined;
}


/** Starts a role on the runtime. Resolves once the metrics server listens and the connection loop runs. */
export async function startWorker(role: WorkerRoleImpl, o: ResolvedWorkerOptions): Promise<WorkerHandle> {
  traceRole(role.name);
  const log = o.logger;
  let metrics: Metrics | undefined;
  let ctx: RoleContext | undefined;
  let nc: NatsConnection | undefined;
  let conn: OrchestratorConnection | undefined;
  let connected = false;
  let initialised = false;
  let stopping = false;
  let firstWelcome: { runId: string; configHash: string } | undefined;
  const abort = new AbortController();
  const taskStarted = new Map<string, number>();
  log.setContext?.({ runId: () => firstWelcome?.runId, policyVersion: () => role.policyVersion() });

  let resolveReady!: () => void;
  let rejectReady!: (e: unknown) => void;
  const ready = new Promise<void>((res, rej) => ((resolveReady = res), (rejectReady = rej)));
  ready.catch(() => {});

  // The registry exists only once Welcome named the run (every series carries run_id), but /health must answer
  // before that: the server reads through this shim.
  const registryShim = {
    get contentType() {
      return metrics?.registry.contentType ?? 'text/plain; version=0.0.4; charset=utf-8';
    },
    metrics: () => (metrics ? metrics.registry.metrics() : Promise.resolve('')),
  } as unknown as Registry;

  const health = () => {
    const ok = connected && initialised && !stopping && (role.isReady?.() ?? true);
    return {
      ok,
      detail: {
        role: role.name,
        worker_id: o.workerId,
        run_id: firstWelcome?.runId ?? null,
        connected,
        initialised,
        stopping,
        policy_version: role.policyVersion() ?? null,
        ...role.healthDetail?.(),
      },
    };
  };
  // A device this machine cannot give ends the role here, before it joins (a SetupError: no restart cures it).
  if (o.device) await checkDevice(o.device);
  // When the client certificates this worker presents and the CA bundles it trusts expire, on /metrics once the
  // registry exists (set from the last read when it is made): what the renewal alerts watch
  // (lib/transport/certificate-expiry.ts)
  const expiryGauge = (m: Metrics) => m.get('tls_certificate_expiry_timestamp_seconds');
  const watched = [...clientCertificateFiles({ grpcCert: o.tls?.cert, natsCert: o.natsAuth.tls?.certFile }), ...caBundleFiles({ grpcCa: o.tls?.ca, natsCa: o.natsAuth.tls?.caFile })];
  const certificates = new CertificateExpiryWatch(watched, {
    onExpiry: (certificate, notAfterMs) => metrics && expiryGauge(metrics).set({ certificate }, notAfterMs / 1000),
    onError: (message) => log.warn(`certificate expiry not read: ${message}`),
  });
  const server: MetricsServer = await startMetricsServer({ port: o.metricsPort, host: o.metricsHost, ...(o.metricsToken !== undefined ? { token: o.metricsToken } : {}), registry: registryShim, health });
  log.info(`metrics and health on ${server.url}${describeMetricsToken(o.metricsToken)}; dialling the orchestrator at ${o.orchestrator}${o.token !== undefined ? ' (with a token)' : ''}${o.tls ? ' over TLS' : ''}; NATS ${o.nats} (${describeNatsAuth(o.natsAuth)})`);

  const send = async (msg: WorkerMessage): Promise<boolean> => {
    const c = conn;
    if (!c || !connected) {
      log.warn('not connected: dropping a message (the orchestrator re-dispatches the task)', { task_id: resultTaskId(msg) ?? null });
      return false;
    }
    try {
      await c.send(msg);
    } catch (e) {
      log.warn(`send failed: ${(e as Error).message}`, { task_id: resultTaskId(msg) ?? null });
      return false;
    }
    const id = resultTaskId(msg);
    if (id !== undefined && !msg.heartbeat) {
      const t0 = taskStarted.get(id);
      if (t0 !== undefined) {
        taskStarted.delete(id);
        metrics?.get('task_latency_seconds').observe({ worker_role: role.name }, (performance.now() - t0) / 1000);
      }
    }
    return true;
  };

  const taskError = (taskId: string, attempt: number, code: string, message: string, retryable: boolean) => {
    log.warn(`task ${taskId}: ${code}: ${message}`);
    return send({ task_error: { task_id: taskId, attempt, code, message, retryable } });
  };

  async function onWelcome(w: Welcome__Output): Promise<void> {
    if (firstWelcome) {
      if (w.run_id !== firstWelcome.runId) {
        throw new WorkerFatalError(`the orchestrator now runs ${JSON.stringify(w.run_id)}, this worker joined ${JSON.stringify(firstWelcome.runId)}: restart it to join another run`);
      }
      const hash = configHash(parseWelcomeConfig(w));
      if (hash !== firstWelcome.configHash) {
        throw new WorkerFatalError(`the orchestrator now sends a different run configuration (hash ${hash.slice(0, 12)}, was ${firstWelcome.configHash.slice(0, 12)}): restart this worker to pick it up`);
      }
      if (initialised) {
        try {
          role.reconnected?.(w);
        } catch (e) {
          throw new ReconnectRefused(e);
        }
        return;
      }
    }
    let runId: string;
    try {
      runId = checkRunId(w.run_id);
    } catch (e) {
      throw new WorkerFatalError(`Welcome.run_id: ${(e as Error).message}`);
    }
    const config = parseWelcomeConfig(w);
    // the orchestrator sends messages up to its limit, and one this worker's gRPC cannot take ends the stream; the
    // reconnect gets it again: a run that never moves and never says why. A SetupError: no restart cures it (a
    // supervisor stops the run instead of restarting the worker, lib/local/supervisor.ts)
    const receives = o.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    if (config.orchestrator.maxMessageBytes > receives) {
      throw new SetupError(`the run's orchestrator.maxMessageBytes is ${config.orchestrator.maxMessageBytes} bytes, but this worker receives messages of at most ${receives}: start it with --max-message-bytes ${config.orchestrator.maxMessageBytes}`);
    }
    if (role.name !== 'reward') await (await import('../models/bundle.ts')).checkNetworkOf(config); // imported network: its start-up check, a SetupError
    const hash = configHash(config);
    firstWelcome = { runId, configHash: hash };
    if (!metrics) {
      metrics = createMetrics(runId, role.name);
      for (const [certificate, notAfterMs] of certificates.expiries()) expiryGauge(metrics).set({ certificate }, notAfterMs / 1000);
    }
    if (!nc) {
      try {
        nc = await connectNats({ url: o.nats, name: `${role.name}/${o.workerId}`, ...o.natsAuth });
      } catch (e) {
        // refused credentials do not get better by retrying; an unreachable server may
        if (isNatsAuthError(e)) throw new WorkerFatalError(`${(e as Error).message}: check the NATS credentials (--nats-user/--nats-pass-file or --nats-token-file)`, { cause: e });
        throw new RetryableWorkerError((e as Error).message, { cause: e });
      }
      nc.closed().then((err) => {
        if (err && !stopping) log.error(`NATS connection closed: ${err.message}`);
      });
    }
    ctx = {
      role: role.name,
      workerId: o.workerId,
      runId,
      config,
      configHash: hash,
      welcome: w,
      nc,
      metrics,
      options: o,
      log,
      get stopping() {
        return stopping;
      },
      send,
      taskError,
    };
    await role.init(ctx);
    initialised = true;
    log.info(`joined run ${runId}`, { policy_version: role.policyVersion() ?? null });
    resolveReady();
  }

  function dispatch(msg: OrchestratorMessage__Output): void {
    switch (msg.kind) {
      case 'rollout_task':
      case 'score_task':
      case 'train_batch': {
        const { id, attempt } = TASK_ID_OF[msg.kind](msg);
        if (msg.kind !== role.taskKind) {
          void taskError(id, attempt, 'wrong_role', `a ${role.name} worker does not take ${msg.kind} messages`, true);
          return;
        }
        if (stopping) {
          void taskError(id, attempt, 'shutting_down', `worker ${o.workerId} is shutting down`, true);
          return;
        }
        taskStarted.set(id, performance.now());
        trace('recv', { kind: msg.kind });
        role.handle(msg);
        return;
      }
      case 'cancel_task': {
        const c = msg.cancel_task!;
        taskStarted.delete(c.task_id);
        role.cancel(c.task_id, c.reason);
        return;
      }
      case 'shutdown': {
        const s = msg.shutdown!;
        log.info(`shutdown requested by the orchestrator: ${s.reason || 'no reason given'}`);
        void stop({ graceMs: s.grace_ms > 0 ? s.grace_ms : o.stopGraceMs, reason: 'orchestrator shutdown' });
        return;
      }
      case 'welcome':
        log.warn('ignoring a second Welcome on the same stream');
        return;
      default:
        return;
    }
  }

  async function session(attempt: number): Promise<void> {
    const hello = role.hello();
    const caps = role.capabilities();
    const c = await connectToOrchestrator({
      address: o.orchestrator,
      role: WIRE_ROLE[role.name],
      workerId: o.workerId,
      capabilities: { ...caps, tensor_dtypes: caps.tensor_dtypes ?? [] },
      hello: { ...hello, software_version: SOFTWARE_VERSION },
      ...(o.token !== undefined ? { token: o.token } : {}),
      ...(o.tls ? { tls: o.tls } : {}),
      ...(o.maxMessageBytes !== undefined ? { maxMessageBytes: o.maxMessageBytes } : {}),
      heartbeatMs: o.heartbeatMs,
      keepaliveMs: o.keepaliveMs,
      keepaliveTimeoutMs: o.keepaliveTimeoutMs,
      heartbeat: () => {
        const v = role.policyVersion();
        return { active_task_ids: role.activeTaskIds(), ...(v !== undefined ? { policy_version: v } : {}) };
      },
    });
    if (stopping) {
      await c.close();
      return;
    }
    conn = c;
    const messages = c.messages[Symbol.asyncIterator]();
    try {
      try {
        await onWelcome(c.welcome);
      } catch (e) {
        if (!(e instanceof ReconnectRefused)) throw e;
        // the role refuses this reconnection (a learner behind the acknowledged version), but the run may be over:
        // an orchestrator whose run is complete sends a Shutdown right after the Welcome (orchestrator/main.ts), and
        // that ends this worker cleanly (exit 0) rather than with the refusal (exit 1)
        const next = await firstMessageWithin(messages, RUN_OVER_WAIT_MS);
        if (next?.kind !== 'shutdown') throw e.error;
        log.info(`${(e.error as Error)?.message ?? e.error}; but the run is over`);
        dispatch(next);
      }
      connected = true;
      if (attempt > 1) log.info('reconnected to the orchestrator', { attempt });
      for await (const msg of { [Symbol.asyncIterator]: () => messages }) dispatch(msg);
    } finally {
      connected = false;
      conn = undefined;
      taskStarted.clear();
      if (!stopping) role.disconnected?.();
      await c.close().catch(() => {});
    }
    if (stopping) return;
    throw new TransportError(grpc.status.UNAVAILABLE, 'the orchestrator closed the stream without a Shutdown', `orchestrator at ${o.orchestrator}`);
  }

  const loop = withReconnect(session, {
    ...o.reconnect,
    signal: abort.signal,
    isRetryable: (e) => (e instanceof TransportError && e.retryable) || e instanceof RetryableWorkerError,
    onRetry: ({ attempt, delayMs, error }) => log.warn(`connection attempt ${attempt} failed (${(error as Error)?.message ?? error}); retrying in ${delayMs} ms`),
  }).catch((e) => {
    if (stopping && abort.signal.aborted) return;
    throw e;
  });

  let closedResources: Promise<void> | undefined;
  const releaseResources = () =>
    (closedResources ??= (async () => {
      await role.close().catch((e) => log.warn(`closing the role failed: ${(e as Error).message}`));
      if (nc) await closeNats(nc);
      await server.close();
      certificates.close();
      offSignals?.();
    })());

  const done = loop.then(
    async () => {
      await releaseResources();
      log.info('stopped');
    },
    async (e) => {
      stopping = true;
      rejectReady(e);
      await releaseResources();
      log.error(`stopped: ${(e as Error)?.message ?? e}`);
      throw e;
    },
  );
  done.catch(() => {});
  done.finally(() => rejectReady(new Error(`${role.name} worker stopped before it joined a run`))).catch(() => {});

  let stopped: Promise<void> | undefined;
  function stop(opts: { graceMs?: number; reason?: string } = {}): Promise<void> {
    return (stopped ??= (async () => {
      stopping = true;
      const graceMs = opts.graceMs ?? o.stopGraceMs;
      log.info(`stopping (${opts.reason ?? 'stop requested'}), grace ${graceMs} ms`);
      if ((await withTimeout(role.drain(), graceMs)) === 'timeout') log.warn(`in-flight work not finished within ${graceMs} ms: abandoned (its leases expire and it is re-dispatched)`);
      abort.abort();
      const c = conn;
      connected = false;
      if (c) await c.close().catch(() => {});
      await done.catch(() => {});
    })());
  }

  // The first signal stops the role gracefully; a second ends the process at once (without aborting it mid-graph)
  const offSignals = o.handleSignals ? onStopSignals((sig) => void stop({ reason: sig }), { warn: (l) => log.warn(l) }) : undefined;

  return {
    role: role.name,
    workerId: o.workerId,
    metricsUrl: server.url,
    ready,
    done,
    isConnected: () => connected,
    metricsText: () => registryShim.metrics(),
    stop,
  };
}

/** What role.reconnected threw (`error`), told apart from the other errors of a Welcome. */
class ReconnectRefused {
  constructor(readonly error: unknown) {}
}

/**
 * How long a worker whose role refused a reconnection waits for the orchestrator's next message, in case it is the
 * Shutdown of a completed run (sent right after the Welcome, on the same stream).
 */
const RUN_OVER_WAIT_MS = 2000;

/** The next message of `messages`, or undefined when none comes within `ms` (or the stream ends). */
async function firstMessageWithin(messages: AsyncIterator<OrchestratorMessage__Output>, ms: number): Promise<OrchestratorMessage__Output | undefined> {
  const next = messages.next().then((r) => (r.done ? undefined : r.value), () => undefined);
  const got = await withTimeout(next, ms);
  return got === 'timeout' ? undefined : got;
}

function parseWelcomeConfig(w: Welcome__Output): RunConfig {
  let json: unknown;
  try {
    json = JSON.parse(w.config_json || '{}');
  } catch (e) {
    throw new SetupError(`Welcome.config_json is not JSON: ${(e as Error).message}`);
  }
  try {
    return parseConfig(json, { source: 'Welcome.config_json' });
  } catch (e) {
    // a run configuration this role refuses: restarting it gets the same one (a SetupError)
    throw new SetupError(`Welcome.config_json: ${(e as Error).message}`);
  }
}
