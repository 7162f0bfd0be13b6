// The command-line face of the worker roles: one set of flags for rollout-worker, reward-worker and learner
// (cli/commands/*.ts), turned into WorkerOptions. --config only supplies defaults for the addresses (its
// orchestrator / nats / metrics sections): the run configuration itself comes from the orchestrator's Welcome.
import type { Argv } from 'yargs';
import { loadConfig } from '../lib/config/index.ts';
import { NATS_ENV, parseHostPort, type NatsAuthOptions } from '../lib/transport/index.ts';
import type { WorkerHandle } from '../lib/worker/runtime.ts';
import { GRAPH_THREAD_AFTER_MS, GRAPH_THREAD_ENV, GRAPH_THREAD_MODES, graphThreads, setGraphThreads, setIntraOpThreads, THREADS_ENV, type GraphThreadMode } from '../lib/graph/runtime.ts';
import { exitAfterGraphs } from '../lib/graph/graph-thread.ts';
import { DEVICES, type Device } from '../lib/graph/device.ts';
import { applyHeapGrowth, type HeapRole } from '../lib/deploy/heap-growth.ts';
import { TOKEN_ENV, type WorkerOptions } from '../lib/worker/options.ts';
import { DEFAULT_KEEPALIVE_MS, DEFAULT_KEEPALIVE_TIMEOUT_MS } from '../lib/transport/grpc-common.ts';
import { exitCodeFor } from '../lib/config/setup-error.ts';
import { checkIntegerFlag, checkRoleFlags } from './flag-checks.ts';

export interface WorkerCliArgs extends NatsAuthCliArgs {
  orchestrator?: string;
  nats?: string;
  metricsPort?: number;
  metricsHost?: string;
  metricsTokenFile?: string;
  workerId?: string;
  device?: Device;
  authTokenFile?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsServerName?: string;
  maxBatch?: number;
  maxInFlight?: number;
  maxMessageBytes?: number;
  keepaliveMs?: number;
  keepaliveTimeoutMs?: number;
  threads?: number;
  graphThread?: string;
  config?: string;
}

/** --graph-thread, of every role (the orchestrator runs the periodic evaluation's graphs). */
export const GRAPH_THREAD_OPTION = {
  type: 'string',
  choices: GRAPH_THREAD_MODES,
  describe: `where the graphs run: auto (default) = on this thread until a call holds the event loop over ${GRAPH_THREAD_AFTER_MS} ms, in a worker thread from then on (CPU sessions; a GPU session stays); on = always in worker threads (a graph call never holds the loop that answers keepalive pings, heartbeats, NATS pings and /metrics; ~1 ms of hand-off per call); off = always on this thread. Default: auto, or the ${GRAPH_THREAD_ENV} environment variable`,
} as const;

/**
 * The role's --graph-thread: the flag, else $RECOVERY_GRPO_GRAPH_THREAD, else auto. A bad value of the variable is
 * refused here, naming it, before any session is made.
 */
export function applyGraphThread(flag: string | undefined): void {
  if (flag !== undefined) setGraphThreads(flag as GraphThreadMode);
  else if ((process.env[GRAPH_THREAD_ENV] ?? '') === '') setGraphThreads('auto');
  graphThreads();
}

/**
 * --metrics-token-file, of every role; `guarded` says what then answers only a request bearing the token (the
 * orchestrator's port also serves its status page and /api/*).
 */
export function metricsTokenFileOption(guarded: '/metrics then answers' | '/metrics, the status page and /api/* then answer') {
  return {
    type: 'string',
    describe: `file holding the bearer token of the metrics port (default: the RECOVERY_GRPO_METRICS_TOKEN environment variable, if set; at least 16 characters, e.g. openssl rand -hex 32; or its digest sha256:<64 hex>, so the process never holds the token): ${guarded} only a request with Authorization: Bearer <token> (Prometheus: authorization.credentials_file), /health answers probes without it but says only ok or not; allows a non-loopback --metrics-host`,
  } as const;
}

/** --metrics-network-protected, of every role (cli/flag-checks.ts checkMetricsHost). */
export const METRICS_NETWORK_PROTECTED_OPTION = {
  type: 'boolean',
  default: false,
  describe: 'allow a non-loopback --metrics-host without --metrics-token-file: the network restricts who reaches /metrics (e.g. a NetworkPolicy, as in k8s/; docs/security.md)',
} as const;

export const CLI_DEFAULTS = { orchestrator: '127.0.0.1:50051', nats: 'nats://127.0.0.1:4222', metricsPort: 9464 } as const;

export function withWorkerOptions<T>(y: Argv<T>, opts: { deviceDefault: string }): Argv<T & WorkerCliArgs> {
  return withNatsAuthOptions(y)
    .option('orchestrator', { type: 'string', describe: `orchestrator gRPC address HOST:PORT (default ${CLI_DEFAULTS.orchestrator}, or --config's orchestrator.listen)` })
    .option('nats', { type: 'string', describe: `NATS URL with JetStream (default ${CLI_DEFAULTS.nats}, or --config's nats.url)` })
    .option('metrics-port', { type: 'number', describe: `port of /metrics and /health; 0 = any free port (default ${CLI_DEFAULTS.metricsPort}, or --config's metrics.port)` })
    .option('metrics-host', { type: 'string', default: '127.0.0.1', describe: 'interface of /metrics and /health (0.0.0.0 in a pod, with --metrics-token-file or --metrics-network-protected)' })
    .option('metrics-token-file', metricsTokenFileOption('/metrics then answers'))
    .option('metrics-network-protected', METRICS_NETWORK_PROTECTED_OPTION)
    .option('worker-id', { type: 'string', describe: 'stable id of this process, [A-Za-z0-9._:-]{1,128}, not __proto__ (default <role>-<hostname>-<pid>)' })
    .option('device', { type: 'string', choices: DEVICES, describe: `ONNX Runtime execution provider: webgpu and cuda are GPUs, docs/gpu.md (default ${opts.deviceDefault})` })
    .option('auth-token-file', { type: 'string', describe: `file holding the orchestrator's bearer token (default: the ${TOKEN_ENV} environment variable, if set)` })
    .option('tls-ca', { type: 'string', describe: "PEM file of the CA that signs the orchestrator's certificate (turns TLS on)" })
    .option('tls-cert', { type: 'string', describe: 'PEM client certificate, for mutual TLS (with --tls-key)' })
    .option('tls-key', { type: 'string', describe: 'PEM client key, for mutual TLS (with --tls-cert)' })
    .option('tls-server-name', { type: 'string', describe: "name expected in the orchestrator's certificate when it differs from the dialled host" })
    .option('max-batch', { type: 'number', describe: 'most items / candidates / samples per task (Capabilities.max_batch)' })
    .option('max-in-flight', { type: 'number', describe: 'tasks held at once (Capabilities.max_in_flight)' })
    .option('max-message-bytes', { type: 'number', describe: "largest gRPC message this worker receives; at least the run's orchestrator.maxMessageBytes, or the worker stops at the Welcome saying so (default 64 MiB, or --config's orchestrator.maxMessageBytes)" })
    .option('keepalive-ms', { type: 'number', describe: `keepalive ping interval on the orchestrator's stream, ms; 0 = none (default ${DEFAULT_KEEPALIVE_MS}). A dead stream (cut link, silent orchestrator) is noticed within this plus --keepalive-timeout-ms` })
    .option('keepalive-timeout-ms', { type: 'number', describe: `a ping unanswered this long ends the stream and the worker reconnects (default ${DEFAULT_KEEPALIVE_TIMEOUT_MS}); with --graph-thread off it must outlast this role's longest graph call, with auto its first long one` })
    .option('threads', { type: 'number', describe: `onnxruntime threads per operator for this process's graphs; 0 = one per core (default: the ${THREADS_ENV} environment variable, else 0). Give each role on a shared machine its share of the cores` })
    .option('graph-thread', GRAPH_THREAD_OPTION)
    .option('config', { type: 'string', describe: 'a run configuration file: only its orchestrator / nats / metrics sections are used, as defaults for the flags above' })
    .check((a) => {
      checkRoleFlags(a);
      if (!!a.tlsCert !== !!a.tlsKey) throw new Error('--tls-cert and --tls-key go together (mutual TLS needs both)');
      checkIntegerFlag(a.keepaliveMs, '--keepalive-ms', 0, ' (0: no pings)');
      checkIntegerFlag(a.maxMessageBytes, '--max-message-bytes', 1024);
      checkIntegerFlag(a.keepaliveTimeoutMs, '--keepalive-timeout-ms', 1);
      if (a.threads !== undefined && (!Number.isInteger(a.threads) || a.threads < 0)) throw new Error(`--threads must be an integer >= 0 (0: one per core), got ${a.threads}`);
      return true;
    }) as unknown as Argv<T & WorkerCliArgs>;
}

export interface NatsAuthCliArgs {
  natsUser?: string;
  natsPassFile?: string;
  natsTokenFile?: string;
  natsTlsCa?: string;
  natsTlsCert?: string;
  natsTlsKey?: string;
}

/** NATS credential flags, shared by the worker roles and the orchestrator. Secrets only from files or the environment. */
export function withNatsAuthOptions<T>(y: Argv<T>): Argv<T & NatsAuthCliArgs> {
  return y
    .option('nats-user', { type: 'string', describe: `NATS user (default: the ${NATS_ENV.user} environment variable); the password from --nats-pass-file or ${NATS_ENV.pass}` })
    .option('nats-pass-file', { type: 'string', describe: `file holding the NATS password (default: the ${NATS_ENV.pass} environment variable); never logged` })
    .option('nats-token-file', { type: 'string', describe: `file holding a NATS token (default: the ${NATS_ENV.token} environment variable); never logged` })
    .option('nats-tls-ca', { type: 'string', describe: "PEM file of the CA that signs the NATS server's certificate (turns TLS on)" })
    .option('nats-tls-cert', { type: 'string', describe: 'PEM client certificate for NATS (with --nats-tls-key), when the server verifies clients' })
    .option('nats-tls-key', { type: 'string', describe: 'PEM client key for NATS (with --nats-tls-cert)' })
    .check((a) => {
      if (!!a.natsTlsCert !== !!a.natsTlsKey) throw new Error('--nats-tls-cert and --nats-tls-key go together');
      return true;
    }) as unknown as Argv<T & NatsAuthCliArgs>;
}

/** The NATS credential flags as NatsAuthOptions (resolveNatsAuth adds the environment). */
export function natsAuthFromArgs(a: NatsAuthCliArgs): NatsAuthOptions {
  const tls = a.natsTlsCa || a.natsTlsCert || a.natsTlsKey
    ? { ...(a.natsTlsCa ? { ca: a.natsTlsCa } : {}), ...(a.natsTlsCert ? { cert: a.natsTlsCert } : {}), ...(a.natsTlsKey ? { key: a.natsTlsKey } : {}) }
    : undefined;
  return {
    ...(a.natsUser !== undefined ? { user: a.natsUser } : {}),
    ...(a.natsPassFile !== undefined ? { passFile: a.natsPassFile } : {}),
    ...(a.natsTokenFile !== undefined ? { tokenFile: a.natsTokenFile } : {}),
    ...(tls ? { tls } : {}),
  };
}

/** A listen address as a dial address: a wildcard host (0.0.0.0, ::) becomes loopback. */
export function dialAddress(listen: string): string {
  const { host, port } = parseHostPort(listen, 'orchestrator.listen');
  return ['0.0.0.0', '::', '[::]', ''].includes(host) ? `127.0.0.1:${port}` : listen;
}

export function workerOptionsFromArgs(a: WorkerCliArgs): WorkerOptions {
  const fromConfig = a.config ? loadConfig(a.config) : undefined;
  const tls = a.tlsCa || a.tlsCert || a.tlsKey || a.tlsServerName
    ? {
        ...(a.tlsCa ? { ca: a.tlsCa } : {}),
        ...(a.tlsCert ? { cert: a.tlsCert } : {}),
        ...(a.tlsKey ? { key: a.tlsKey } : {}),
        ...(a.tlsServerName ? { serverName: a.tlsServerName } : {}),
      }
    : undefined;
  return {
    orchestrator: a.orchestrator ?? (fromConfig ? dialAddress(fromConfig.orchestrator.listen) : CLI_DEFAULTS.orchestrator),
    nats: a.nats ?? fromConfig?.nats.url ?? CLI_DEFAULTS.nats,
    metricsPort: a.metricsPort ?? fromConfig?.metrics.port ?? CLI_DEFAULTS.metricsPort,
    ...(a.metricsHost !== undefined ? { metricsHost: a.metricsHost } : {}),
    ...(a.metricsTokenFile !== undefined ? { metricsTokenFile: a.metricsTokenFile } : {}),
    ...(a.workerId !== undefined ? { workerId: a.workerId } : {}),
    ...(a.device !== undefined ? { device: a.device } : {}),
    ...(a.authTokenFile !== undefined ? { tokenFile: a.authTokenFile } : {}),
    ...(tls ? { tls } : {}),
    natsAuth: natsAuthFromArgs(a),
    ...(a.maxBatch !== undefined ? { maxBatch: a.maxBatch } : {}),
    ...(a.maxInFlight !== undefined ? { maxInFlight: a.maxInFlight } : {}),
    ...((a.maxMessageBytes ?? fromConfig?.orchestrator.maxMessageBytes) !== undefined ? { maxMessageBytes: a.maxMessageBytes ?? fromConfig!.orchestrator.maxMessageBytes } : {}),
    ...(a.keepaliveMs !== undefined ? { keepaliveMs: a.keepaliveMs } : {}),
    ...(a.keepaliveTimeoutMs !== undefined ? { keepaliveTimeoutMs: a.keepaliveTimeoutMs } : {}),
    handleSignals: true,
  };
}

/** Applies the process-wide settings among the flags (--threads, --graph-thread) and `role`'s heap growth before the role creates its sessions. */
export function applyProcessArgs(a: WorkerCliArgs, role: HeapRole): void {
  applyHeapGrowth(process.env, role);
  if (a.threads !== undefined) setIntraOpThreads(a.threads);
  applyGraphThread(a.graphThread);
}

/**
 * Runs a role until it stops: exit code 0 after a clean stop (SIGTERM, SIGINT, Shutdown); on a fatal error,
 * CONFIG_EXIT_CODE where no restart can cure it (a refused option or run configuration, a device the machine lacks:
 * lib/config/setup-error.ts), else 1.
 */
export async function runUntilStopped(start: () => Promise<WorkerHandle>): Promise<never> {
  let handle: WorkerHandle;
  try {
    handle = await start();
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}\n`);
    return exitAfterGraphs(exitCodeFor(e));
  }
  try {
    await handle.done;
    return exitAfterGraphs(0);
  } catch (e) {
    // the runtime logged the reason
    return exitAfterGraphs(exitCodeFor(e));
  }
}
