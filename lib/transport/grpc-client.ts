// A worker's side of Orchestrator.Connect: dial, send Hello, wait for Welcome, then exchange messages;
// heartbeats go up on a timer. Reconnection is the caller's decision: wrap the session in withReconnect().
import * as grpc from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { AsyncQueue } from './queue.ts';
import { PendingSends } from './pending-sends.ts';
import { TransportError, type StreamEnd } from './errors.ts';
import { clientFlowOptions } from './flow-window.ts';
import { loadCaBundle, loadTlsSet } from './tls-reload.ts';
import {
  CONNECT_PATH,
  DEFAULT_KEEPALIVE_MS,
  DEFAULT_KEEPALIVE_TIMEOUT_MS,
  deserializeResponse,
  keepaliveOptions,
  messageSizeOptions,
  parseHostPort,
  preserialize,
  serializeRequest,
  type Preserialized,
} from './grpc-common.ts';
import { expandTaskBundle, tasksPerMessage, workerMessageKind } from './messages.ts';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  PROTOCOL_VERSION,
  type Capabilities,
  type Heartbeat,
  type Hello,
  type OrchestratorMessage__Output,
  type ResultBundle,
  type Welcome__Output,
  type WorkerMessage,
  type WorkerMessageKind,
  type WorkerRole,
} from './proto.ts';

export interface ClientTls {
  /** CA that signs the orchestrator's certificate (PEM text or file path); default: system roots. */
  ca?: string | Buffer;
  /** Client certificate and key, for mutual TLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Expected name in the server certificate when it differs from the dialled host. */
  serverName?: string;
}

export interface ConnectOptions {
  /** host:port of the orchestrator. */
  address: string;
  role: WorkerRole;
  workerId: string;
  capabilities: Capabilities;
  /** Other Hello fields: policy_version, last_batch_seq, software_version. */
  hello?: Omit<Hello, 'role' | 'worker_id' | 'capabilities' | 'protocol_version'>;
  /** Sent as metadata `authorization: Bearer <token>`. */
  token?: string;
  tls?: ClientTls;
  /** Default 64 MiB; must match the server's. */
  maxMessageBytes?: number;
  /** Heartbeat period when Welcome.heartbeat_interval_ms is 0. Default 5000 ms. */
  heartbeatMs?: number;
  /** What each heartbeat reports (active task ids, policy version). seq and sent_unix_ms are filled in. */
  heartbeat?: () => Omit<Heartbeat, 'seq' | 'sent_unix_ms'>;
  /**
   * HTTP/2 keepalive ping interval on the connection; 0 = none. With the timeout below it bounds how long a dead
   * stream (a cut link, a silent peer) goes unnoticed: the stream then ends with UNAVAILABLE. Default 5000 ms.
   */
  keepaliveMs?: number;
  /**
   * A ping unanswered this long drops the connection. Must outlast the longest hold of this process's event loop
   * (a synchronous graph call), or a healthy stream is dropped. Default 10 000 ms.
   */
  keepaliveTimeoutMs?: number;
  /** Time allowed from dialling to Welcome. Default 10 s. */
  connectTimeoutMs?: number;
  /** Messages buffered before reading from the orchestrator pauses. Default 64. */
  bufferedMessages?: number;
  grpcOptions?: grpc.ChannelOptions;
}

export interface OrchestratorConnection {
  readonly welcome: Welcome__Output;
  /**
   * Messages after Welcome, in order; single consumer. Ends normally when the orchestrator closes the stream
   * with OK or after close(); throws a TransportError when the stream fails (orchestrator gone: UNAVAILABLE,
   * heartbeat timeout: DEADLINE_EXCEEDED, ...).
   */
  readonly messages: AsyncIterable<OrchestratorMessage__Output>;
  /** Resolves once the message is handed to HTTP/2; rejects if closed or over maxMessageBytes (stream stays open then). */
  send(msg: WorkerMessage): Promise<void>;
  /** Half-closes, waits for the orchestrator's status (at most timeoutMs, default 2 s, then cancels), closes the channel. */
  close(opts?: { timeoutMs?: number }): Promise<void>;
  /** Resolves (never rejects) when the stream is over. */
  readonly closed: Promise<StreamEnd>;
}

/**
 * Credentials of one dial. Given as paths, the files are read here, on every connectToOrchestrator, so a worker's
 * reconnect presents its renewed certificate (and trusts a renewed CA bundle) without a restart: keep them paths, not
 * contents read once (test/transport/tls-reload.test.ts). An open stream keeps its handshake.
 *
 * The files are checked as the server checks its own (lib/transport/tls-reload.ts loadTlsSet:
 * each file parses and is complete, the key matches the certificate, the certificate is within its validity window).
 * A renewal that falls between the reads of the certificate and the key pairs an old file with a new one: the files
 * are read once more at once, and a set still unusable is a TransportError (UNAVAILABLE, retryable: the reconnect
 * loop dials again after its backoff and a completed renewal then succeeds) naming the file. Files bad for good fail
 * every dial with that message; the reconnect loop's attempts bound it.
 */
function channelCredentials(tls: ClientTls | undefined, context: string): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  if (!!tls.cert !== !!tls.key) throw new Error('tls.cert and tls.key go together (mutual TLS needs both)');
  const load = () => {
    if (tls.cert && tls.key) {
      const set = loadTlsSet({ cert: tls.cert, key: tls.key, ...(tls.ca ? { ca: tls.ca } : {}) }, 'tls');
      return grpc.credentials.createSsl(set.ca ?? null, set.key, set.cert);
    }
    return grpc.credentials.createSsl(tls.ca ? loadCaBundle(tls.ca, 'tls.ca').bytes : null);
  };
  try {
    return load();
  } catch {
    try {
      return load();
    } catch (e) {
      throw new TransportError(grpc.status.UNAVAILABLE, `TLS files not usable for this dial: ${(e as Error).message}`, context);
    }
  }
}

/** Dials the orchestrator, says Hello and resolves with the connection once Welcome arrives. */
export async function connectToOrchestrator(opts: ConnectOptions): Promise<OrchestratorConnection> {
  parseHostPort(opts.address, 'address');
  const maxBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
  const context = `orchestrator at ${opts.address}`;
  const hello = preserialize(
    'request',
    {
      hello: {
        ...opts.hello,
        protocol_version: PROTOCOL_VERSION,
        role: opts.role,
        worker_id: opts.workerId,
        capabilities: opts.capabilities,
      },
    },
    'hello',
    maxBytes,
  );
  const client = new grpc.Client(opts.address, channelCredentials(opts.tls, context), {
    ...messageSizeOptions(maxBytes),
    ...clientFlowOptions(), // tasks and TrainBatches in one write (lib/transport/flow-window.ts)
    ...keepaliveOptions(opts.keepaliveMs ?? DEFAULT_KEEPALIVE_MS, opts.keepaliveTimeoutMs ?? DEFAULT_KEEPALIVE_TIMEOUT_MS),
    ...(opts.tls?.serverName ? { 'grpc.ssl_target_name_override': opts.tls.serverName, 'grpc.default_authority': opts.tls.serverName } : {}),
    ...opts.grpcOptions,
  });
  const md = new grpc.Metadata();
  if (opts.token) md.set('authorization', `Bearer ${opts.token}`);
  const call = client.makeBidiStreamRequest(CONNECT_PATH, serializeRequest, deserializeResponse, md, {});

  let welcome: Welcome__Output | undefined;
  let localClose = false;
  let ended: StreamEnd | null = null;
  let heartbeat: NodeJS.Timeout | undefined;
  let resolveClosed!: (e: StreamEnd) => void;
  const closed = new Promise<StreamEnd>((r) => (resolveClosed = r));
  const queue = new AsyncQueue<OrchestratorMessage__Output>({
    highWater: opts.bufferedMessages ?? 64,
    onHigh: () => call.pause(),
    onLow: () => call.resume(),
  });

  const pendingSends = new PendingSends<(e: StreamEnd) => void>();
  const finish = (end: StreamEnd, error?: TransportError) => {
    if (ended) return;
    ended = end;
    if (heartbeat) clearInterval(heartbeat);
    queue.end(error);
    resolveClosed(end);
    for (const abort of pendingSends.drain()) abort(end);
    client.close();
  };

  const welcomed = new Promise<Welcome__Output>((resolve, reject) => {
    const timer = setTimeout(() => {
      const err = new TransportError(grpc.status.DEADLINE_EXCEEDED, `no welcome within ${connectTimeoutMs} ms`, context);
      finish({ code: err.code, details: err.details, by: 'local' }, err);
      call.cancel();
      reject(err);
    }, connectTimeoutMs);
    timer.unref();
    call.on('data', (raw: unknown) => {
      const msg = raw as OrchestratorMessage__Output;
      if (ended) return;
      if (!welcome) {
        if (msg.kind !== 'welcome' || !msg.welcome) {
          clearTimeout(timer);
          const err = new TransportError(grpc.status.INTERNAL, `first message must be welcome, got ${msg.kind ?? 'an empty message'}`, context);
          finish({ code: err.code, details: err.details, by: 'local' }, err);
          call.cancel();
          return reject(err);
        }
        clearTimeout(timer);
        welcome = msg.welcome;
        return resolve(msg.welcome);
      }
      if (!msg.kind) return; // a newer orchestrator's message kind we do not know: ignore
      if (msg.kind === 'task_bundle') {
        // Each task of a bundle reaches the worker as if it had come alone.
        let parts: OrchestratorMessage__Output[];
        try {
          parts = expandTaskBundle(msg.task_bundle!, tasksPerMessage(opts.capabilities));
        } catch (e) {
          const err = new TransportError(grpc.status.INTERNAL, (e as Error).message, context);
          finish({ code: err.code, details: err.details, by: 'local' }, err);
          call.cancel();
          return;
        }
        for (const m of parts) queue.push(m);
        return;
      }
      queue.push(msg);
    });
    call.on('error', (e: unknown) => {
      clearTimeout(timer);
      const err = TransportError.fromServiceError(e, context);
      const by = localClose ? 'local' : 'remote';
      finish({ code: err.code, details: err.details, by }, localClose ? undefined : err);
      reject(err);
    });
    call.on('status', (s: grpc.StatusObject) => {
      clearTimeout(timer);
      if (s.code !== grpc.status.OK) return; // 'error' handled it
      finish({ code: s.code, details: s.details, by: localClose ? 'local' : 'remote' });
      reject(new TransportError(grpc.status.UNAVAILABLE, 'stream closed before welcome', context));
    });
  });
  welcomed.catch(() => {});

  call.write(hello);
  const w = await welcomed;

  const writeWire = (wire: Preserialized, kind: string): Promise<void> => {
    if (ended) {
      return Promise.reject(new TransportError(grpc.status.UNAVAILABLE, `stream is closed (${ended.details})`, `send ${kind} to ${context}`));
    }
    // Not Promise.race with `closed` (one reaction per message left on a long-lived promise): finish() fails
    // the sends still pending.
    return new Promise<void>((resolve, reject) => {
      const abort = (e: StreamEnd) => reject(new TransportError(grpc.status.UNAVAILABLE, `stream closed while sending (${e.details})`, `send ${kind} to ${context}`));
      const pending = pendingSends.add(abort);
      call.write(wire, (err: unknown) => {
        pendingSends.delete(pending);
        if (err) reject(TransportError.fromServiceError(err, `send ${kind}`));
        else resolve();
      });
    });
  };
  const writeOne = (msg: WorkerMessage, kind: string): Promise<void> => {
    let wire: Preserialized;
    try {
      wire = preserialize('request', msg, kind, maxBytes);
    } catch (e) {
      return Promise.reject(e);
    }
    return writeWire(wire, kind);
  };

  // Results and task errors sent in the same turn of the event loop travel in one ResultBundle when the
  // orchestrator accepts bundles (Welcome.max_results_per_message > 1): one message, one HTTP/2 write for them all.
  const maxResults = Math.max(1, w.max_results_per_message ?? 0);
  interface Held { msg: WorkerMessage; kind: WorkerMessageKind; resolve: () => void; reject: (e: unknown) => void }
  let held: Held[] = [];
  let flushQueued = false;
  const flush = () => {
    flushQueued = false;
    const items = held;
    held = [];
    for (let i = 0; i < items.length; i += maxResults) {
      const chunk = items.slice(i, i + maxResults);
      const settle = (p: Promise<void>, who: Held[]) => p.then(() => who.forEach((h) => h.resolve()), (e: unknown) => who.forEach((h) => h.reject(e)));
      if (chunk.length === 1) {
        settle(writeOne(chunk[0]!.msg, chunk[0]!.kind), chunk);
        continue;
      }
      const bundle: ResultBundle = { rollout_results: [], score_results: [], task_errors: [] };
      for (const h of chunk) {
        if (h.msg.rollout_result) bundle.rollout_results!.push(h.msg.rollout_result);
        else if (h.msg.score_result) bundle.score_results!.push(h.msg.score_result);
        else if (h.msg.task_error) bundle.task_errors!.push(h.msg.task_error);
      }
      let wire: Preserialized;
      try {
        wire = preserialize('request', { result_bundle: bundle }, 'result_bundle', maxBytes);
      } catch {
        // over the size limit together: each alone (an oversize one is refused by itself, as without bundles)
        for (const h of chunk) settle(writeOne(h.msg, h.kind), [h]);
        continue;
      }
      settle(writeWire(wire, 'result_bundle'), chunk);
    }
  };

  const send = async (msg: WorkerMessage): Promise<void> => {
    const kind = workerMessageKind(msg);
    if (kind === 'hello') throw new Error('send hello: hello is sent by connectToOrchestrator, once per stream');
    if (kind === 'result_bundle') throw new Error('send result_bundle: results are bundled by the connection; send each result on its own');
    if (ended || localClose) {
      throw new TransportError(grpc.status.UNAVAILABLE, `stream is closed (${ended?.details ?? 'closing'})`, `send ${kind} to ${context}`);
    }
    if (maxResults > 1 && (kind === 'rollout_result' || kind === 'score_result' || kind === 'task_error')) {
      return new Promise<void>((resolve, reject) => {
        held.push({ msg, kind, resolve, reject });
        if (!flushQueued) {
          flushQueued = true;
          setImmediate(flush);
        }
      });
    }
    if (held.length > 0) flush(); // results queued earlier go first
    await writeOne(msg, kind);
  };

  const periodMs = w.heartbeat_interval_ms > 0 ? w.heartbeat_interval_ms : (opts.heartbeatMs ?? 5000);
  let seq = 0;
  heartbeat = setInterval(() => {
    if (ended || localClose) return;
    const extra = opts.heartbeat?.() ?? {};
    send({ heartbeat: { ...extra, seq: ++seq, sent_unix_ms: Date.now() } }).catch(() => {});
  }, periodMs);
  heartbeat.unref();

  return {
    welcome: w,
    messages: queue,
    send,
    closed,
    async close({ timeoutMs = 2000 } = {}) {
      if (!ended && !localClose) {
        if (held.length > 0) flush(); // results already handed to send() go out before the half-close
        localClose = true;
        if (heartbeat) clearInterval(heartbeat);
        call.end();
        call.resume();
        const t = setTimeout(() => call.cancel(), timeoutMs);
        t.unref();
        await closed;
        clearTimeout(t);
      }
      await closed;
      client.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// reconnection

export interface ReconnectOptions {
  /** First retry delay. Default 200 ms. */
  initialDelayMs?: number;
  /** Cap on the delay. Default 10 s. */
  maxDelayMs?: number;
  /** Growth per consecutive failure. Default 2. */
  factor?: number;
  /** Random spread, a fraction of the delay (0..1). Default 0.2. */
  jitter?: number;
  /** Give up after this many consecutive failures (the last error is thrown). Default: never. */
  maxAttempts?: number;
  /** A run that lasted at least this long counts as healthy: the next failure starts from initialDelayMs. Default 10 s. */
  resetAfterMs?: number;
  /** Which errors deserve another try. Default: TransportError.retryable (UNAVAILABLE, DEADLINE_EXCEEDED, ...). */
  isRetryable?: (err: unknown) => boolean;
  onRetry?: (info: { attempt: number; delayMs: number; error: unknown }) => void;
  signal?: AbortSignal;
}

/** Delay before retry number `failures` (1-based), without jitter. */
export function backoffDelay(failures: number, opts: Pick<ReconnectOptions, 'initialDelayMs' | 'maxDelayMs' | 'factor'> = {}): number {
  const initial = opts.initialDelayMs ?? 200;
  const max = opts.maxDelayMs ?? 10_000;
  const factor = opts.factor ?? 2;
  return Math.min(max, initial * factor ** Math.max(0, failures - 1));
}

/**
 * Runs `run` until it resolves; when it throws a retryable error, waits (exponential backoff with jitter)
 * and runs it again. `attempt` counts runs from 1. Typical use: connect inside `run`, consume `messages`
 * until they end, return when the orchestrator said Shutdown.
 */
export async function withReconnect<T>(run: (attempt: number) => Promise<T>, opts: ReconnectOptions = {}): Promise<T> {
  const isRetryable = opts.isRetryable ?? ((e: unknown) => e instanceof TransportError && e.retryable);
  const resetAfterMs = opts.resetAfterMs ?? 10_000;
  const jitter = Math.min(1, Math.max(0, opts.jitter ?? 0.2));
  let failures = 0;
  for (let attempt = 1; ; attempt++) {
    opts.signal?.throwIfAborted();
    const started = Date.now();
    try {
      return await run(attempt);
    } catch (error) {
      if (opts.signal?.aborted || !isRetryable(error)) throw error;
      failures = Date.now() - started >= resetAfterMs ? 1 : failures + 1;
      if (opts.maxAttempts !== undefined && failures >= opts.maxAttempts) throw error;
      const base = backoffDelay(failures, opts);
      const delayMs = Math.round(base * (1 - jitter + 2 * jitter * Math.random()));
      opts.onRetry?.({ attempt, delayMs, error });
      await sleep(delayMs, undefined, { signal: opts.signal });
    }
  }
}
