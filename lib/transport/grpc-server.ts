// The orchestrator's gRPC server: one WorkerSession per Orchestrator.Connect stream.
//
// Lifecycle of a stream: token check (UNAUTHENTICATED) -> first message must be a valid Hello within
// helloTimeoutMs (INVALID_ARGUMENT / FAILED_PRECONDITION / DEADLINE_EXCEEDED) -> onConnect(session) ->
// the orchestrator sends Welcome first, then tasks; the session's `messages` yields everything after Hello
// (heartbeats included) -> the session closes when the worker half-closes (answered with OK), the worker
// cancels / disconnects, the orchestrator calls end()/fail(), heartbeats stop for heartbeatTimeoutMs
// (DEADLINE_EXCEEDED), or the server closes (UNAVAILABLE).
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { AsyncQueue } from './queue.ts';
import { PendingSends } from './pending-sends.ts';
import { widenServerWindows } from './flow-window.ts';
import { TransportError, type StreamEnd } from './errors.ts';
import {
  isLoopbackHost,
  messageSizeOptions,
  orchestratorServiceDefinition,
  parseHostPort,
  preserialize,
  type Preserialized,
} from './grpc-common.ts';
import { expandResultBundle, orchestratorMessageKind, tasksPerMessage, validateHello, type ValidHello } from './messages.ts';
import { grantMatcher, grantRefusal, pinnedElsewhere, tokenCredentialId, type Grant, type RoleGrant, type SessionCredential } from './role-tokens.ts';
import { certificateCredentialId, peerCertificateGrant, ROLE_URI_PREFIX, roleUri } from './cert-identity.ts';
import { ReloadingTls, type TlsReloadStatus } from './tls-reload.ts';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  PROTOCOL_VERSION,
  type OrchestratorMessage,
  type OrchestratorMessageKind,
  type WorkerMessage__Output,
  type WorkerRole,
} from './proto.ts';

export interface ServerTls {
  /** PEM text or a file path. */
  cert: string | Buffer;
  key: string | Buffer;
  /** CA that signs client certificates (needed with requireClientCert). */
  ca?: string | Buffer;
  /**
   * Mutual TLS: refuse clients without a certificate signed by `ca`. A certificate that names a role
   * (URI SAN spiffe://recovery-grpo/role/<role>[/<worker-id>], lib/transport/cert-identity.ts) connects only as
   * that role; one that names none needs a token that grants the role.
   */
  requireClientCert?: boolean;
  /**
   * How often the files (cert, key, ca given as paths) are read again, so a renewed certificate or CA bundle takes
   * effect without a restart (lib/transport/tls-reload.ts): new handshakes use it, established connections keep
   * theirs; files that cannot be used keep the set in use and are reported (onTlsError). Default 60 s; 0: never
   * (OrchestratorServer.reloadTls() still does).
   */
  refreshMs?: number;
}

export interface ServerAuth {
  /** Shared secret; every stream must carry metadata `authorization: Bearer <token>`. Grants every role. */
  token?: string;
  /**
   * Tokens that each grant one role (and optionally one worker id) (lib/transport/role-tokens.ts): a Hello for
   * another role or worker id is refused with PERMISSION_DENIED. May be combined with `token`.
   */
  roleTokens?: readonly RoleGrant[];
  tls?: ServerTls;
  /**
   * Refuse, for every worker role, a session whose credentials do not pin the worker id its Hello presents: the
   * shared token, a role token whose line says `*`, a client certificate without a worker URI, or none at all
   * (PERMISSION_DENIED, naming the credential and what it lacks). A pinned role token or a certificate naming the
   * worker (spiffe://recovery-grpo/role/<role>/<worker-id>) is welcomed. Default off: role-wide credentials work.
   * k8s/components/per-pod-identity turns it on (--require-worker-identity).
   */
  requireWorkerIdentity?: boolean;
}

export interface OrchestratorServerOptions {
  /** host:port to bind; default '127.0.0.1:0' (a free port). Non-loopback needs auth (token or mutual TLS). */
  listen?: string;
  /** Largest message either way, both sides must agree; default 64 MiB. */
  maxMessageBytes?: number;
  auth?: ServerAuth;
  /** A stream that sends no Hello within this is refused with DEADLINE_EXCEEDED. Default 10 s. */
  helloTimeoutMs?: number;
  /** A session with no message (heartbeats included) for this long is closed with DEADLINE_EXCEEDED. Default 30 s; 0 = never. */
  heartbeatTimeoutMs?: number;
  /** Messages buffered per session before reading from the worker pauses. Default 64. */
  bufferedMessages?: number;
  /**
   * Most results one ResultBundle may carry (announced in Welcome.max_results_per_message). Default 1024; 1 turns
   * result bundles off (workers then send one result per message).
   */
  maxResultsPerMessage?: number;
  /** Called once per stream after a valid Hello. Must send Welcome first (session.send({ welcome })). */
  onConnect: (session: WorkerSession) => void | Promise<void>;
  /** Errors thrown by onConnect (the session is then failed with INTERNAL). Default: console.error. */
  onError?: (err: unknown, session: WorkerSession) => void;
  /** Extra grpc-js server options (keepalive, ...). */
  grpcOptions?: grpc.ChannelOptions;
  /** A TLS refresh found files it could not use (the set in use is kept). Default: console.error. */
  onTlsError?: (message: string) => void;
  /** A TLS refresh took renewed files. Default: console.error names the new serial (one line per renewal). */
  onTlsReload?: (status: TlsReloadStatus) => void;
}

export interface WorkerSession {
  /** Random id of this stream (also sent in Welcome.session_id unless the orchestrator sets one). */
  readonly id: string;
  readonly role: WorkerRole;
  readonly workerId: string;
  /** What authenticated it (lib/transport/role-tokens.ts SessionCredential): the role token, certificate, shared token or none. */
  readonly credential: SessionCredential;
  readonly hello: ValidHello;
  readonly peer: string;
  readonly connectedAt: number;
  /** Date.now() of the last message received (Hello included). */
  readonly lastSeen: number;
  readonly isOpen: boolean;
  /** Messages after Hello, in order. Single consumer. Ends (without throwing) when the stream closes; see `closed`. */
  readonly messages: AsyncIterable<WorkerMessage__Output>;
  /**
   * Sends one message. The first must be `{ welcome }` (protocol_version and session_id are filled in when
   * absent). Resolves when the message is handed to HTTP/2 (back-pressure); rejects if the session is closed or
   * the message is over maxMessageBytes (the stream stays open in that case).
   */
  send(msg: OrchestratorMessage): Promise<void>;
  /** Closes the stream with status OK. */
  end(): void;
  /** Closes the stream with an error status the worker sees. */
  fail(code: grpc.status, details: string): void;
  /** Resolves (never rejects) once the stream is over. */
  readonly closed: Promise<StreamEnd>;
}

export interface OrchestratorServer {
  readonly port: number;
  /** host:port actually bound. */
  readonly address: string;
  /** Open sessions. */
  sessions(): WorkerSession[];
  /**
   * Reads the TLS files again now (they are also read every auth.tls.refreshMs) and says what is in use; undefined
   * without TLS.
   */
  reloadTls(): TlsReloadStatus | undefined;
  /** What TLS set is in use (without reading the files); undefined without TLS. */
  tlsStatus(): TlsReloadStatus | undefined;
  /** Ends every session with UNAVAILABLE, then shuts the server down (forcefully after graceMs, default 2 s). */
  close(opts?: { graceMs?: number; reason?: string }): Promise<void>;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/**
 * The refusal of a session whose credentials pin no worker id while auth.requireWorkerIdentity is on: names the
 * credential kind and what it lacks. `namedRole`: some credential named the role (a wildcard role token, a
 * certificate with only the role URI).
 */
export function unpinnedRefusal(credential: SessionCredential, namedRole: boolean, role: WorkerRole, workerId: string): string {
  const what =
    credential.kind === 'token'
      ? 'a role token whose line grants any worker id (*)'
      : credential.kind === 'cert'
        ? `a client certificate without a worker URI (it names only ${ROLE_URI_PREFIX}<role>)`
        : credential.kind === 'shared'
          ? namedRole
            ? 'the shared token and a client certificate without a worker URI'
            : 'the shared token, which grants every role and worker id'
          : namedRole
            ? 'a client certificate without a worker URI'
            : 'no credential';
  return (
    `this orchestrator requires a per-worker identity (auth.requireWorkerIdentity), and ${role} ${JSON.stringify(workerId)} connected with ${what}: ` +
    `it needs a credential naming worker id ${JSON.stringify(workerId)}, a client certificate with URI ${roleUri(role.toLowerCase(), workerId)} or a role-token line "${role.toLowerCase()} ${workerId} <token>"`
  );
}

function bearerOf(md: grpc.Metadata): string | undefined {
  const values = md.get('authorization');
  if (values.length !== 1 || typeof values[0] !== 'string') return undefined;
  return /^Bearer\s+(\S+)\s*$/i.exec(values[0])?.[1];
}

/**
 * Throws unless `listen` with `auth` is acceptable: a non-loopback address needs a token or mutual TLS (the error
 * says why). startOrchestratorServer calls it; the orchestrator calls it first, before anything else starts.
 */
export function checkListenAuth(listen: string, auth: ServerAuth = {}): void {
  const { host } = parseHostPort(listen, 'listen');
  if (auth.token !== undefined && auth.token.trim() === '') throw new Error('auth.token is empty: give a secret or leave it out');
  const mutualTls = !!auth.tls?.requireClientCert;
  if (!isLoopbackHost(host) && !auth.token && !auth.roleTokens?.length && !mutualTls) {
    throw new Error(
      `refusing to listen on ${listen} without authentication: it is not a loopback address, so any host that can ` +
        `reach it could join the run. Set auth.token (workers send "authorization: Bearer <token>") or ` +
        `auth.tls with requireClientCert, or listen on 127.0.0.1.`,
    );
  }
  if (auth.tls?.requireClientCert && !auth.tls.ca) {
    throw new Error('auth.tls.requireClientCert needs auth.tls.ca (the CA that signs client certificates)');
  }
  // a credential that pins a worker id must be possible, or every worker is refused at Hello and crash-loops
  if (auth.requireWorkerIdentity && !mutualTls && !auth.roleTokens?.some((g) => g.workerId !== undefined)) {
    const has = [auth.token ? 'the shared token' : '', auth.roleTokens?.length ? `${auth.roleTokens.length} role token(s), each for any worker id (*)` : '', auth.tls ? 'TLS without client certificates' : '']
      .filter(Boolean)
      .join(', ');
    throw new Error(
      `auth.requireWorkerIdentity (--require-worker-identity) needs a credential that can pin a worker id, and this ` +
        `orchestrator has ${has || 'no credential at all'}: every worker would be refused. Turn on mutual TLS ` +
        `(auth.tls with requireClientCert and ca; certificates with URI ${ROLE_URI_PREFIX}<role>/<worker-id>) or give ` +
        `a role-token file with at least one line naming a worker id ("<role> <worker-id> <token>"), or leave it off.`,
    );
  }
}

export async function startOrchestratorServer(opts: OrchestratorServerOptions): Promise<OrchestratorServer> {
  const listen = opts.listen ?? '127.0.0.1:0';
  const { host } = parseHostPort(listen, 'listen');
  const maxBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const auth = opts.auth ?? {};
  checkListenAuth(listen, auth);
  const mutualTls = !!auth.tls?.requireClientCert;
  const maxResultsPerMessage = opts.maxResultsPerMessage ?? 1024;
  if (!Number.isInteger(maxResultsPerMessage) || maxResultsPerMessage < 1) throw new Error(`maxResultsPerMessage must be a positive integer, got ${maxResultsPerMessage}`);
  // The certificate, key and (with mutual TLS) the client CA bundle, read again every refreshMs: grpc-js applies each
  // renewed set to new handshakes (lib/transport/tls-reload.ts). Without mutual TLS the CA is not used (no client
  // certificate is asked for), as before.
  const tls = auth.tls
    ? new ReloadingTls(
        { cert: auth.tls.cert, key: auth.tls.key, ...(mutualTls && auth.tls.ca ? { ca: auth.tls.ca } : {}) },
        {
          field: 'auth.tls',
          ...(auth.tls.refreshMs !== undefined ? { refreshMs: auth.tls.refreshMs } : {}),
          ...(opts.onTlsError ? { onError: opts.onTlsError } : {}),
          onReload: opts.onTlsReload ?? ((st) => console.error(`orchestrator: auth.tls renewed: certificate serial ${st.serial}${mutualTls ? `, ${st.caCertificates} client CA certificate(s)` : ''}`)),
        },
      )
    : undefined;
  // grpc-js's declaration names the first argument the CA provider, but its code uses it as the identity provider
  // (server-credentials.js: createCertificateProviderServerCredentials passes its arguments on to a constructor
  // (identity, ca, ...)): one object serves both here, the second only with mutual TLS.
  const credentials = tls
    ? grpc.experimental.createCertificateProviderServerCredentials(tls, mutualTls ? tls : null, mutualTls)
    : grpc.ServerCredentials.createInsecure();
  const tokenDigest = auth.token ? digest(auth.token) : undefined;
  const matchGrant = auth.roleTokens?.length ? grantMatcher(auth.roleTokens) : undefined;
  const pinnedRefusal = auth.roleTokens?.length ? pinnedElsewhere(auth.roleTokens) : undefined;
  const tokenRequired = tokenDigest !== undefined || matchGrant !== undefined;
  const helloTimeoutMs = opts.helloTimeoutMs ?? 10_000;
  const heartbeatTimeoutMs = opts.heartbeatTimeoutMs ?? 30_000;
  const onError = opts.onError ?? ((err, s) => console.error(`orchestrator: onConnect failed for ${s.role} ${s.workerId}:`, err));

  const requireWorkerIdentity = !!auth.requireWorkerIdentity;
  const server = new grpc.Server({ ...messageSizeOptions(maxBytes), ...opts.grpcOptions });
  const widened = widenServerWindows(server, 'before-bind'); // results in one write (lib/transport/flow-window.ts)
  const open = new Set<SessionImpl>();
  let closing = false;

  server.addService(orchestratorServiceDefinition(), {
    Connect: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
      const refuse = (code: grpc.status, details: string) => {
        call.emit('error', { code, details });
      };
      if (closing) return refuse(grpc.status.UNAVAILABLE, 'orchestrator is shutting down');
      // The shared token grants every role; a role token (if any matches) only its own.
      const bearer = tokenRequired ? bearerOf(call.metadata) : undefined;
      const shared = bearer !== undefined && tokenDigest !== undefined && timingSafeEqual(digest(bearer), tokenDigest);
      const grant = bearer !== undefined && !shared && matchGrant ? matchGrant(bearer) : undefined;
      if (tokenRequired && !shared && !grant) {
        return refuse(grpc.status.UNAUTHENTICATED, 'missing or wrong token: send metadata "authorization: Bearer <token>"');
      }
      // Every credential that names a role must allow the Hello; with mutual TLS and no token, the certificate
      // must name one (a certificate signed by the CA proves who connects, its role URI what it may do).
      const grants: { g: Grant; what: string }[] = grant ? [{ g: grant, what: 'this credential' }] : [];
      // the session's credential: the role token, else the certificate naming a role, else the shared token or none
      let credential: SessionCredential = grant
        ? { kind: 'token', id: tokenCredentialId(grant.token), pinned: grant.workerId !== undefined }
        : shared ? { kind: 'shared', id: 'shared', pinned: false } : { kind: 'none', id: 'none', pinned: false };
      if (mutualTls) {
        let certGrant: Grant | undefined;
        const peerCert = call.getAuthContext()?.sslPeerCertificate;
        try {
          certGrant = peerCertificateGrant(peerCert);
        } catch (e) {
          return refuse(grpc.status.PERMISSION_DENIED, (e as Error).message);
        }
        if (certGrant) {
          grants.push({ g: certGrant, what: 'the client certificate' });
          // the certificate is the session's credential when no role token is (its id needs its DER bytes, `raw`:
          // without them the session keeps the shared token's or none, review29 F7)
          const certId = certificateCredentialId(peerCert);
          if (certId && !grant) credential = { kind: 'cert', id: certId, pinned: certGrant.workerId !== undefined };
        } else if (!tokenRequired) {
          return refuse(grpc.status.PERMISSION_DENIED, `the client certificate names no role: it needs a URI subject alternative name ${ROLE_URI_PREFIX}<role>[/<worker-id>]`);
        }
      }
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        call.removeListener('data', onFirst);
        refuse(grpc.status.DEADLINE_EXCEEDED, `no hello within ${helloTimeoutMs} ms of opening the stream`);
      }, helloTimeoutMs);
      timer.unref();
      const onFirst = (raw: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        call.removeListener('data', onFirst);
        call.pause();
        const first = raw as WorkerMessage__Output;
        if (first.kind !== 'hello') {
          return refuse(grpc.status.INVALID_ARGUMENT, `first message on Orchestrator.Connect must be hello, got ${first.kind ?? 'an empty message'}`);
        }
        let hello: ValidHello;
        try {
          hello = validateHello(first.hello);
        } catch (e) {
          return refuse(grpc.status.INVALID_ARGUMENT, (e as Error).message);
        }
        for (const { g, what } of grants) {
          const refusal = grantRefusal(g, hello.role, hello.worker_id, what);
          if (refusal) return refuse(grpc.status.PERMISSION_DENIED, refusal);
        }
        // an id a line of the file pins is refused to every session whose role token is not such a line: a wildcard
        // token, the shared token beside the file, a certificate (review29 F2)
        const taken = pinnedRefusal?.(grant, hello.role, hello.worker_id, grant ? 'this token' : shared ? 'the shared token' : 'this credential');
        if (taken) return refuse(grpc.status.PERMISSION_DENIED, taken);
        // every credential that names a worker id has allowed this one (above); with requireWorkerIdentity one must
        if (requireWorkerIdentity && !grants.some(({ g }) => g.workerId !== undefined)) {
          return refuse(grpc.status.PERMISSION_DENIED, unpinnedRefusal(credential, grants.length > 0, hello.role, hello.worker_id));
        }
        if (hello.protocol_version !== PROTOCOL_VERSION) {
          return refuse(
            grpc.status.FAILED_PRECONDITION,
            `hello.protocol_version ${hello.protocol_version} is not supported: this orchestrator speaks ${PROTOCOL_VERSION}`,
          );
        }
        const session = new SessionImpl(call, hello, credential, {
          maxBytes,
          heartbeatTimeoutMs,
          bufferedMessages: opts.bufferedMessages ?? 64,
          maxResultsPerMessage,
        });
        open.add(session);
        void session.closed.then(() => open.delete(session));
        Promise.resolve()
          .then(() => opts.onConnect(session))
          .catch((err) => {
            onError(err, session);
            session.fail(grpc.status.INTERNAL, `orchestrator failed to accept the session: ${(err as Error)?.message ?? err}`);
          });
      };
      call.on('data', onFirst);
      call.on('cancelled', () => {
        settled = true;
        clearTimeout(timer);
      });
      call.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        refuse(grpc.status.INVALID_ARGUMENT, 'stream ended before hello');
      });
    },
  });

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(listen, credentials, (err, p) => (err ? reject(new Error(`cannot listen on ${listen}: ${err.message}`)) : resolve(p))),
  ).catch((e: unknown) => {
    tls?.close(); // its refresh timer
    throw e;
  });
  if (widened) widenServerWindows(server, 'after-bind');
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;

  return {
    port,
    address,
    sessions: () => [...open],
    reloadTls: () => tls?.refresh(),
    tlsStatus: () => tls?.status(),
    async close({ graceMs = 2000, reason = 'orchestrator is shutting down' } = {}) {
      closing = true;
      tls?.close();
      for (const s of open) s.fail(grpc.status.UNAVAILABLE, reason);
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        t.unref();
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      });
    },
  };
}

/** A message handed to gRPC and not yet written. */
interface PendingSend {
  readonly kind: OrchestratorMessageKind;
  readonly reject: (e: unknown) => void;
}

class SessionImpl implements WorkerSession {
  readonly id = randomUUID();
  readonly role: WorkerRole;
  readonly workerId: string;
  readonly peer: string;
  readonly connectedAt = Date.now();
  lastSeen = Date.now();
  readonly messages: AsyncQueue<WorkerMessage__Output>;
  readonly closed: Promise<StreamEnd>;
  private resolveClosed!: (e: StreamEnd) => void;
  private ended: StreamEnd | null = null;
  private welcomed = false;
  private paused = false;
  /** Sends handed to gRPC and not yet written: failed at once if the session ends. */
  private readonly pendingSends = new PendingSends<PendingSend>();
  private readonly watchdog: NodeJS.Timeout | undefined;

  constructor(
    private readonly call: grpc.ServerDuplexStream<unknown, unknown>,
    readonly hello: ValidHello,
    readonly credential: SessionCredential,
    private readonly cfg: { maxBytes: number; heartbeatTimeoutMs: number; bufferedMessages: number; maxResultsPerMessage: number },
  ) {
    this.role = hello.role;
    this.workerId = hello.worker_id;
    this.peer = call.getPeer();
    this.closed = new Promise((r) => (this.resolveClosed = r));
    this.messages = new AsyncQueue<WorkerMessage__Output>({
      highWater: cfg.bufferedMessages,
      onHigh: () => {
        this.paused = true;
        call.pause();
      },
      onLow: () => {
        this.paused = false;
        this.lastSeen = Date.now(); // we were not reading: do not count that time against the worker
        if (!this.ended) call.resume();
      },
    });
    call.on('data', (raw: unknown) => this.onData(raw as WorkerMessage__Output));
    call.on('end', () => {
      // the worker half-closed: it has nothing more to say; answer with OK
      this.messages.end();
      if (this.ended) return;
      this.finish({ code: grpc.status.OK, details: 'worker closed the stream', by: 'remote' });
      call.end();
    });
    call.on('cancelled', () => {
      this.finish({ code: grpc.status.CANCELLED, details: 'worker cancelled the stream or the connection dropped', by: 'remote' });
    });
    call.on('error', () => {
      // our own fail() emits 'error' too; finish() keeps the first reason
      this.finish({ code: grpc.status.UNKNOWN, details: 'stream error', by: 'local' });
    });
    if (cfg.heartbeatTimeoutMs > 0) {
      this.watchdog = setInterval(() => {
        if (!this.paused && Date.now() - this.lastSeen > cfg.heartbeatTimeoutMs) {
          this.fail(grpc.status.DEADLINE_EXCEEDED, `no message from ${this.workerId} for ${cfg.heartbeatTimeoutMs} ms (heartbeat timeout)`);
        }
      }, Math.max(10, Math.min(1000, cfg.heartbeatTimeoutMs / 4)));
      this.watchdog.unref();
    }
    call.resume();
  }

  get isOpen(): boolean {
    return this.ended === null;
  }

  private onData(msg: WorkerMessage__Output): void {
    if (this.ended) return;
    this.lastSeen = Date.now();
    if (!msg.kind) return this.fail(grpc.status.INVALID_ARGUMENT, 'message with no payload (WorkerMessage.kind unset)');
    if (msg.kind === 'hello') return this.fail(grpc.status.INVALID_ARGUMENT, 'hello may only be sent once per stream');
    if (msg.kind === 'result_bundle') {
      // Each result of a bundle reaches the orchestrator as if it had come alone (its checks run per result).
      let parts: WorkerMessage__Output[];
      try {
        parts = expandResultBundle(msg.result_bundle!, this.cfg.maxResultsPerMessage);
      } catch (e) {
        return this.fail(grpc.status.INVALID_ARGUMENT, (e as Error).message);
      }
      for (const m of parts) this.messages.push(m);
      return;
    }
    this.messages.push(msg);
  }

  private finish(end: StreamEnd): void {
    if (this.ended) return;
    this.ended = end;
    if (this.watchdog) clearInterval(this.watchdog);
    this.messages.end();
    this.resolveClosed(end);
    for (const p of this.pendingSends.drain()) {
      p.reject(new TransportError(grpc.status.UNAVAILABLE, `session closed while sending (${end.details})`, `send ${p.kind} to ${this.workerId}`));
    }
  }

  send(msg: OrchestratorMessage): Promise<void> {
    // Not async: one Promise per message, not two (thousands of messages a second go through here).
    let kind: OrchestratorMessageKind;
    let wire: Preserialized;
    try {
      kind = orchestratorMessageKind(msg);
      if (this.ended) {
        throw new TransportError(grpc.status.UNAVAILABLE, `session is closed (${this.ended.details})`, `send ${kind} to ${this.role} ${this.workerId}`);
      }
      if (!this.welcomed && kind !== 'welcome') throw new Error(`send ${kind} to ${this.workerId}: the first message on a session must be welcome`);
      if (this.welcomed && kind === 'welcome') throw new Error(`send welcome to ${this.workerId}: welcome was sent already`);
      if (kind === 'welcome') {
        msg = { welcome: { protocol_version: PROTOCOL_VERSION, session_id: this.id, max_results_per_message: this.cfg.maxResultsPerMessage, ...msg.welcome } };
        this.welcomed = true;
      } else if (kind === 'task_bundle') {
        const b = msg.task_bundle!;
        const n = (b.rollout_tasks?.length ?? 0) + (b.score_tasks?.length ?? 0);
        const ask = tasksPerMessage(this.hello.capabilities);
        if (n === 0 || ask < 2 || n > ask) {
          throw new RangeError(`send task_bundle to ${this.workerId}: ${n} tasks, but it asked for ${ask < 2 ? 'one per message' : `at most ${ask}`} (capabilities.max_tasks_per_message)`);
        }
      }
      wire = preserialize('response', msg, kind, this.cfg.maxBytes);
    } catch (e) {
      return Promise.reject(e);
    }
    // Not Promise.race with `closed`: that would leave one reaction per message on the session's long-lived
    // promise (memory growing with every message sent). Pending sends are failed by finish() instead.
    return new Promise<void>((resolve, reject) => {
      const pending = this.pendingSends.add({ kind, reject });
      this.call.write(wire, (err: unknown) => {
        this.pendingSends.delete(pending);
        if (err) reject(TransportError.fromServiceError(err, `send ${kind}`));
        else resolve();
      });
    });
  }

  end(): void {
    if (this.ended) return;
    this.finish({ code: grpc.status.OK, details: 'orchestrator ended the session', by: 'local' });
    this.call.end();
  }

  fail(code: grpc.status, details: string): void {
    if (this.ended) return;
    this.finish({ code, details, by: 'local' });
    this.call.emit('error', { code, details });
  }
}
