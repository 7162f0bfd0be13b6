// Options every worker role shares (rollout worker, reward worker, learner), validated at the edge.
// A worker needs no run configuration of its own: the run config arrives in Welcome.config_json.
import { readSecret } from '../transport/secrets.ts';
import { readMetricsToken } from '../metrics/index.ts';
import { createProcessLogger } from '../log/index.ts';
import { hostname } from 'node:os';
import { z } from 'zod';
import { DEFAULT_KEEPALIVE_MS, DEFAULT_KEEPALIVE_TIMEOUT_MS } from '../transport/grpc-common.ts';
import { DEVICES, refusedOn, type Device } from '../graph/device.ts';
import { SetupError } from '../config/setup-error.ts';
import { formatIssues, parseHostPort, resolveNatsAuth, WORKER_ID_PATTERN, WORKER_ID_RULE, type NatsAuth, type NatsAuthOptions, type ReconnectOptions, type WorkerRole } from '../transport/index.ts';

export type RoleName = 'rollout' | 'reward' | 'learner';

export const WIRE_ROLE: Readonly<Record<RoleName, WorkerRole>> = { rollout: 'ROLLOUT', reward: 'REWARD', learner: 'LEARNER' };

/** Environment variable holding the orchestrator token when no --auth-token-file is given. */
export const TOKEN_ENV = 'RECOVERY_GRPO_TOKEN';

export interface Logger {
  /** Detail nobody needs to act on; loggers without a debug level drop it. */
  debug?(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** The run id and policy version every later line carries (lib/log), when the logger keeps a context. */
  setContext?(ctx: { runId?: () => string | undefined; policyVersion?: () => number | undefined }): void;
}

/** What a caller (the CLI, a test, the demo) gives a role. Everything but `role` has a default. */
export interface WorkerOptions {
  /** Orchestrator gRPC address host:port. Default 127.0.0.1:50051. */
  orchestrator?: string;
  /** NATS URL (JetStream). Default nats://127.0.0.1:4222. */
  nats?: string;
  /** Port of /metrics and /health; 0 = any free port (the handle's metricsUrl says which). Default 0. */
  metricsPort?: number;
  /** Interface the metrics server binds. Default 127.0.0.1 (0.0.0.0 in a pod so Prometheus can scrape it). */
  metricsHost?: string;
  /**
   * Bearer token of the metrics port: every path but /health needs it (lib/metrics startMetricsServer). Takes
   * precedence over metricsTokenFile and the environment variable RECOVERY_GRPO_METRICS_TOKEN. Never logged.
   */
  metricsToken?: string;
  /** File holding the metrics token (trimmed). */
  metricsTokenFile?: string;
  /** Stable id of this process ([A-Za-z0-9._:-]{1,128}). Default `<role>-<hostname>-<pid>`. */
  workerId?: string;
  /** ONNX Runtime execution provider: where this machine runs the role's graphs (docs/gpu.md). Default cpu. */
  device?: Device;
  /** Bearer token for the orchestrator. Takes precedence over tokenFile and the environment. Never logged. */
  token?: string;
  /** File holding the token (trailing whitespace trimmed). Else the environment variable RECOVERY_GRPO_TOKEN. */
  tokenFile?: string;
  /** TLS to the orchestrator: PEM file paths (or PEM text). cert + key for mutual TLS. */
  tls?: { ca?: string; cert?: string; key?: string; serverName?: string };
  /**
   * NATS credentials (user + pass, or token; each a value, a file, or else the environment: RECOVERY_GRPO_NATS_USER,
   * RECOVERY_GRPO_NATS_PASS, RECOVERY_GRPO_NATS_TOKEN) and TLS (PEM files). Never logged.
   */
  natsAuth?: NatsAuthOptions;
  /** Most items / candidates / samples per task this worker takes (Capabilities.max_batch). Role default. */
  maxBatch?: number;
  /** Tasks held at once (Capabilities.max_in_flight). Role default. */
  maxInFlight?: number;
  /** Heartbeat period when the Welcome gives none. Default 5000 ms. */
  heartbeatMs?: number;
  /**
   * Keepalive pings on the orchestrator's stream, ms apart; 0 = none. A ping unanswered for keepaliveTimeoutMs
   * ends the stream (UNAVAILABLE) and the worker reconnects: the bound on how long a dead stream goes unnoticed.
   * Default 5000 (docs/reliability.md, "Dead streams").
   */
  keepaliveMs?: number;
  /**
   * A graph call on the calling thread holds the event loop, and an answer read late counts as none: with
   * --graph-thread off it must outlast the role's longest graph call, with auto (the default) its first long one.
   * Default 10 000.
   */
  keepaliveTimeoutMs?: number;
  /** Reconnect backoff (withReconnect). Default: 200 ms doubling to 10 s, forever. */
  reconnect?: Omit<ReconnectOptions, 'signal' | 'onRetry' | 'isRetryable'>;
  /** Grace for in-flight work on stop() / SIGTERM (a Shutdown message brings its own). Default 10 s. */
  stopGraceMs?: number;
  /** Stop gracefully on SIGTERM / SIGINT. Default false (the CLI turns it on). */
  handleSignals?: boolean;
  /** Default: lines on stderr. */
  logger?: Logger;
  /** Largest gRPC message; must match the orchestrator's. Default 64 MiB. */
  maxMessageBytes?: number;
}

export interface ResolvedWorkerOptions {
  role: RoleName;
  orchestrator: string;
  nats: string;
  metricsPort: number;
  metricsHost: string;
  metricsToken: string | undefined;
  workerId: string;
  device: Device | undefined;
  token: string | undefined;
  tls: { ca?: string; cert?: string; key?: string; serverName?: string } | undefined;
  /** Spread into connectNats. */
  natsAuth: NatsAuth;
  maxBatch: number | undefined;
  maxInFlight: number | undefined;
  heartbeatMs: number;
  keepaliveMs: number;
  keepaliveTimeoutMs: number;
  reconnect: Omit<ReconnectOptions, 'signal' | 'onRetry' | 'isRetryable'>;
  stopGraceMs: number;
  handleSignals: boolean;
  logger: Logger;
  maxMessageBytes: number | undefined;
}

const schema = z.strictObject({
  orchestrator: z.string().default('127.0.0.1:50051'),
  nats: z.string().regex(/^(nats|tls|ws|wss):\/\/\S+$/, 'must be a nats://, tls://, ws:// or wss:// URL').default('nats://127.0.0.1:4222'),
  metricsPort: z.number().int().gte(0).lte(65535).default(0),
  metricsHost: z.string().min(1).default('127.0.0.1'),
  metricsToken: z.string().optional(),
  metricsTokenFile: z.string().min(1).optional(),
  workerId: z.string().regex(WORKER_ID_PATTERN, WORKER_ID_RULE).optional(),
  device: z.enum(DEVICES).optional(),
  token: z.string().optional(),
  tokenFile: z.string().min(1).optional(),
  tls: z.strictObject({ ca: z.string().optional(), cert: z.string().optional(), key: z.string().optional(), serverName: z.string().optional() })
    .refine((t) => !!t.cert === !!t.key, 'cert and key go together (mutual TLS needs both)')
    .optional(),
  natsAuth: z.strictObject({
    user: z.string().optional(), pass: z.string().optional(), passFile: z.string().min(1).optional(),
    token: z.string().optional(), tokenFile: z.string().min(1).optional(),
    tls: z.strictObject({ ca: z.string().optional(), cert: z.string().optional(), key: z.string().optional() }).optional(),
  }).optional(),
  maxBatch: z.number().int().gte(1).optional(),
  maxInFlight: z.number().int().gte(1).optional(),
  heartbeatMs: z.number().int().gte(10).default(5000),
  keepaliveMs: z.number().int().gte(0).default(DEFAULT_KEEPALIVE_MS),
  keepaliveTimeoutMs: z.number().int().gte(1).default(DEFAULT_KEEPALIVE_TIMEOUT_MS),
  reconnect: z.record(z.string(), z.unknown()).default({}),
  stopGraceMs: z.number().int().gte(0).default(10_000),
  handleSignals: z.boolean().default(false),
  logger: z.custom<Logger>((l) => !!l && typeof (l as Logger).info === 'function').optional(),
  maxMessageBytes: z.number().int().gte(1024).optional(),
});

/** `role-host-pid`, with characters the worker id does not allow replaced. */
export function defaultWorkerId(role: RoleName): string {
  return `${role}-${hostname()}-${process.pid}`.replace(/[^A-Za-z0-9._:-]/g, '-').slice(0, 128);
}

/** Default logger: JSON lines on stderr when it is not a terminal, `time level [role worker-id] message {fields}` at one (lib/log). */
export function stderrLogger(role: string, workerId?: string): Logger {
  return createProcessLogger({ role, ...(workerId !== undefined ? { workerId } : {}) }, { fd: 2 });
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

function readToken(opts: { token?: string; tokenFile?: string }, env: NodeJS.ProcessEnv): string | undefined {
  try {
    return readSecret(opts.token, opts.tokenFile, TOKEN_ENV, 'worker options: the auth token', env);
  } catch (e) {
    throw new SetupError((e as Error).message, { cause: e }); // an unreadable secret file: no restart cures it
  }
}

/** Validates and completes a role's options. Errors (SetupErrors) name the option (`worker options.metricsPort: ...`). */
export function resolveWorkerOptions(role: RoleName, options: WorkerOptions, env: NodeJS.ProcessEnv = process.env): ResolvedWorkerOptions {
  const r = schema.safeParse(options);
  if (!r.success) throw new SetupError(formatIssues('worker options', r.error));
  const o = r.data;
  try {
    parseHostPort(o.orchestrator, 'orchestrator');
  } catch (e) {
    throw new SetupError(`worker options.orchestrator: ${(e as Error).message}`);
  }
  const refused = o.device ? refusedOn(o.device, role) : undefined;
  if (refused) throw new SetupError(`worker options.device: ${o.device}: ${refused}`);
  const workerId = o.workerId ?? defaultWorkerId(role);
  let natsAuth: NatsAuth;
  try {
    natsAuth = resolveNatsAuth(o.natsAuth ?? {}, env);
  } catch (e) {
    throw new SetupError(`worker options.natsAuth: ${(e as Error).message}`);
  }
  let metricsToken: string | undefined;
  try {
    metricsToken = readMetricsToken(o.metricsToken, o.metricsTokenFile, 'worker options.metricsToken', env);
  } catch (e) {
    throw new SetupError((e as Error).message, { cause: e });
  }
  return {
    role,
    orchestrator: o.orchestrator,
    nats: o.nats,
    metricsPort: o.metricsPort,
    metricsHost: o.metricsHost,
    metricsToken,
    workerId,
    device: o.device,
    token: readToken(o, env),
    tls: o.tls,
    natsAuth,
    maxBatch: o.maxBatch,
    maxInFlight: o.maxInFlight,
    heartbeatMs: o.heartbeatMs,
    keepaliveMs: o.keepaliveMs,
    keepaliveTimeoutMs: o.keepaliveTimeoutMs,
    reconnect: o.reconnect as ResolvedWorkerOptions['reconnect'],
    stopGraceMs: o.stopGraceMs,
    handleSignals: o.handleSignals,
    logger: o.logger ?? stderrLogger(role, workerId),
    maxMessageBytes: o.maxMessageBytes,
  };
}
