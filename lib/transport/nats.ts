// NATS JetStream: checkpoint distribution (object store + announcement stream) and run state (KV with CAS).
//
// Names for run <runId> (runId: [A-Za-z0-9_-]{1,64}):
// - object store bucket  `checkpoints-<runId>`   objects `v0000000042` (zero-padded version)
// - stream              `recovery-ckpt-<runId>` on subject `recovery.<runId>.checkpoint` (announcements, JSON)
// - KV bucket           `runstate-<runId>`      key `state` by default
//
// The object bytes are written and read by object-chunks.ts (Node's sha256, large chunks); the chunks carry headers
// naming the checkpoint, and watchers subscribed to the chunk subjects assemble them as they are stored
// (checkpoint-push.ts), so the bytes travel once. The announcement stream is the source of truth for "published": put()
// stores the object, then publishes the announcement (Nats-Msg-Id `v<version>` so a retried put is de-duplicated
// by JetStream). watch() is a core subscription to the announcement subject plus a direct read of the newest
// announcement at the join and after every reconnect (no JetStream consumer: the roles that read checkpoints may not
// make consumers, docs/security.md), so a worker that joins late gets the newest checkpoint first and then every
// later one; versions are yielded strictly increasing.
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { permissionRefusal } from './nats-refusal.ts';
import { CHECKPOINT_KEY_ENV, loadSigningKey, loadVerifyKey, signCheckpoint, verifyCheckpoint } from '../checkpoint/sign.ts';
import {
  connect,
  DiscardPolicy,
  headers,
  JSONCodec,
  StorageType,
  type ConnectionOptions,
  type JetStreamClient,
  type JetStreamManager,
  type KV,
  type NatsConnection,
  type ObjectInfo,
  type ObjectStore,
  type Subscription,
} from 'nats';
import { z } from 'zod';
import { formatIssues } from './messages.ts';
import { ObjectChunks, ObjectTruncatedError, type CommittedRecord } from './object-chunks.ts';
import { listObjectRecords } from './object-listing.ts';
import { CheckpointPushReceiver, pushHeaders, STREAM_HEADER } from './checkpoint-push.ts';
import { ensureStream, isStoreLost } from './store-loss.ts';
import { RUN_STATE_API, RUN_STATE_KEY } from './nats-permissions.ts';
import { announcementStream, announcementSubject, checkpointBucket, checkRunId, kvStream, objectStream, runStateBucket } from './run-names.ts';
import { checkOwnedStream, objectBucketSettings, type OwnedStreamSettings } from './owned-stream.ts';
import { presizePayloads, sendLargeUncopied } from './nats-payload.ts';
import { failRequestsOnDisconnect, NatsDisconnectedError, onDisconnect } from './nats-disconnect.ts';
import './nats-reader.ts'; // what a dropped connection had read but not parsed is not parsed as the next one's
import { settleYoungGeneration } from './read-memory.ts';
import { trace } from '../log/trace.ts';
import { SetupError } from '../config/setup-error.ts';
import { withTimeout } from '../async/with-timeout.ts';

export { checkRunId };

// ---------------------------------------------------------------------------------------------------
// connection

export interface NatsConnectOptions {
  /** nats://host:port, or several for a cluster. */
  url: string | string[];
  /** Connection name shown by the server (e.g. "rollout-worker/rollout-3"). */
  name: string;
  user?: string;
  pass?: string;
  token?: string;
  /**
   * Paths, which nats.js reads on every dial (node_transport.js loadClientCerts; a reconnect is a new transport), so a
   * reconnect presents a renewed certificate: pass paths, not contents (test/transport/tls-reload.test.ts).
   */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** Connect timeout. Default 5 s. */
  timeoutMs?: number;
  /** Reconnect attempts after a lost connection; -1 = forever (default). */
  maxReconnectAttempts?: number;
  /**
   * PING the server this often; NATS_MAX_PINGS_OUT unanswered ones drop the connection (and the client reconnects).
   * Default NATS_PING_INTERVAL_MS (nats.js's own is 2 min): the bound on how long a silent server (a cut link, a
   * hung process) goes unnoticed. A long synchronous graph call cannot trip it: every turn of the event loop reads
   * the socket before the next PING timer can fire.
   */
  pingIntervalMs?: number;
}

/** The NATS connection's PING interval (NatsConnectOptions.pingIntervalMs): a silent server is dropped in 10-15 s. */
export const NATS_PING_INTERVAL_MS = 5000;
export const NATS_MAX_PINGS_OUT = 2;

/** True for a connectNats failure caused by refused credentials (not worth retrying). */
export function isNatsAuthError(e: unknown): boolean {
  const code = (e as { code?: string } | null)?.code ?? '';
  return /AUTHORIZATION_VIOLATION|AUTHENTICATION/i.test(code) || /authorization violation|authentication (timeout|expired)/i.test((e as Error)?.message ?? '');
}

/**
 * A TLS failure at connect that no wait cures: the server's certificate not signed by the CA given (or self-signed),
 * or not naming the host dialled; or TLS asked of a server without it (nats.js SERVER_OPT_NA). Node's and OpenSSL's
 * codes, kept by connectNats (measured on nats-server 2.9.10, nats.js 2.29: UNABLE_TO_VERIFY_LEAF_SIGNATURE for
 * another CA, ERR_TLS_CERT_ALTNAME_INVALID for another name). A connection refused, a timeout or a reset is not one
 * (an outage, or a server still starting), and neither is a certificate expired or not yet valid: a renewal or a
 * clock put right cures those while the role waits (review25e).
 */
export function isNatsTlsError(e: unknown): boolean {
  const code = (e as { code?: string } | null)?.code ?? '';
  if (TLS_CURED_BY_WAITING.has(code)) return false;
  return /^ERR_TLS_|^ERR_SSL_|CERT|SELF_SIGNED|^UNABLE_TO_|^SERVER_OPT_NA$/.test(code);
}

/** OpenSSL's codes for a certificate outside its validity dates: waited out, not a setup error. */
const TLS_CURED_BY_WAITING = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

/**
 * Drains `nc` (flush, stop subscriptions, close), and closes it if that has not closed it within `ms`: a drain waits
 * for the server, so a connection that reads nothing (a cut link, a server gone) would hold a role's exit for ever.
 * A drain can also resolve without closing: nats.js swallows its flush's failure when the server is gone (the
 * connection reconnecting), and such a connection redialled for ever (maxReconnectAttempts -1), its reconnect timer
 * holding the process alive after every stop() (round 24: a stop after nats-server's stopped the process from ending).
 */
export async function closeNats(nc: NatsConnection, ms = 5000): Promise<void> {
  await withTimeout(nc.drain().catch(() => undefined), ms);
  if (!nc.isClosed()) await withTimeout(nc.close().catch(() => undefined), ms);
}

/**
 * Connects to NATS. The caller owns the connection: `await closeNats(nc)` (a drain, bounded), `await nc.drain()` or
 * `await nc.close()`; `nc.closed()` resolves when it is gone.
 */
export async function connectNats(opts: NatsConnectOptions): Promise<NatsConnection> {
  const co: ConnectionOptions = {
    servers: opts.url,
    name: opts.name,
    timeout: opts.timeoutMs ?? 5000,
    maxReconnectAttempts: opts.maxReconnectAttempts ?? -1,
    reconnectTimeWait: 500,
    pingInterval: opts.pingIntervalMs ?? NATS_PING_INTERVAL_MS,
    maxPingOut: NATS_MAX_PINGS_OUT,
  };
  if (opts.user !== undefined) co.user = opts.user;
  if (opts.pass !== undefined) co.pass = opts.pass;
  if (opts.token !== undefined) co.token = opts.token;
  if (opts.tls) co.tls = { ...opts.tls };
  try {
    const nc = await connect(co);
    // checkpoint chunks are up to 8 MiB: assemble each in one buffer of its size, and write them without a copy
    // into a new buffer (nats-payload.ts)
    presizePayloads(nc);
    sendLargeUncopied(nc);
    // a request the server cannot answer any more (the connection dropped) fails then, not at its timeout
    failRequestsOnDisconnect(nc);
    return nc;
  } catch (e) {
    // keep nats.js's code (AUTHORIZATION_VIOLATION, CONNECTION_REFUSED, ...): callers tell bad credentials from an outage
    throw Object.assign(new Error(`cannot connect to NATS at ${[opts.url].flat().join(', ')} as ${opts.name}: ${(e as Error).message}`), {
      code: (e as { code?: string }).code,
    });
  }
}

// ---------------------------------------------------------------------------------------------------
// checkpoints

export const DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;

/** "sha256:<hex>" of some bytes: the digest format used in announcements and CheckpointRef. */
export function sha256Digest(bytes: Uint8Array): string {
  return 'sha256:' + createHash('sha256').update(bytes).digest('hex');
}

export const AnnouncementSchema = z.object({
  run_id: z.string(),
  version: z.number().int().nonnegative(),
  name: z.string().min(1),
  digest: z.string().regex(DIGEST_PATTERN),
  size: z.number().int().nonnegative(),
  meta: z.record(z.string(), z.unknown()),
  published_unix_ms: z.number(),
});
export type Announcement = z.infer<typeof AnnouncementSchema>;

const isNonNegativeInt = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/**
 * AnnouncementSchema's check written out: the announcement (its seven fields, as the schema outputs them) when the
 * schema accepts `json`, undefined otherwise, and also for whatever it is unsure of (a meta with an own `__proto__`
 * key); the caller then runs the schema itself, which says what is wrong. Why: a follower parses one announcement per
 * checkpoint, so the schema's code never gets hot; cold, its parse cost ~0.1-0.3 ms of CPU per announcement against
 * a few microseconds here (docs/performance-history/broadcast.md, "Round 27: bcast27"). test/transport/announcement-parse.test.ts
 * holds the two to the same answers.
 */
export function checkAnnouncement(json: unknown): Announcement | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const a = json as Record<string, unknown>;
  const { run_id, version, name, digest, size, meta, published_unix_ms } = a;
  if (typeof run_id !== 'string' || !isNonNegativeInt(version) || typeof name !== 'string' || name.length < 1) return undefined;
  if (typeof digest !== 'string' || !DIGEST_PATTERN.test(digest) || !isNonNegativeInt(size)) return undefined;
  if (typeof published_unix_ms !== 'number' || !Number.isFinite(published_unix_ms)) return undefined;
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta) || Object.getPrototypeOf(meta) !== Object.prototype) return undefined;
  if (Object.prototype.hasOwnProperty.call(meta, '__proto__')) return undefined;
  return { run_id, version, name, digest, size, meta: { ...(meta as Record<string, unknown>) }, published_unix_ms };
}

export class CheckpointIntegrityError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CheckpointIntegrityError';
  }
}

export interface CheckpointStoreOptions {
  runId: string;
  /** JetStream replicas for the bucket and stream. Default 1. */
  replicas?: number;
  /** File (default) or memory storage. */
  storage?: 'file' | 'memory';
  /** Observers for metrics: bytes moved and seconds taken. */
  onPut?: (info: { version: number; bytes: number; seconds: number }) => void;
  onGet?: (info: { version: number; bytes: number; seconds: number }) => void;
  /** The learner's ed25519 private key: put() signs (run id, version, digest, meta) into the announcement's meta.signature. */
  signingKey?: KeyObject;
  /** The learner's ed25519 public key: latest() and watch() accept only announcements it signed (lib/checkpoint/sign.ts). */
  verifyKey?: KeyObject;
  /**
   * put() writes the chunks with headers naming the checkpoint, so that the stores that watch() assemble them as
   * they are stored (checkpoint-push.ts); default true. Watchers use a push only when its sha256 is the announced
   * digest, and fetch from the store otherwise.
   */
  push?: boolean;
  /** Told when the store worked around a server's wrong answer (e.g. an empty object listing); default process.emitWarning. */
  onWarning?: (message: string) => void;
  /**
   * A reader's store (orchestrator, rollout workers, evaluation): creates nothing (only the learner may, and no role
   * changes a stream's settings, docs/security.md); reads as "nothing stored" while the learner has not made the bucket.
   * Default false: the owner's (learner's) store, which creates the bucket and announcement stream where missing and
   * checks the settings of both (checkOwnedStream: refused with an error naming them, never updated).
   */
  readOnly?: boolean;
}

const jc = JSONCodec();
const bucketOptions = (runId: string, opts: Pick<CheckpointStoreOptions, 'storage' | 'replicas'>) => ({
  storage: opts.storage === 'memory' ? StorageType.Memory : StorageType.File,
  replicas: opts.replicas ?? 1,
  description: `recovery-grpo checkpoints of run ${runId}`,
});
const storageOf = (opts: Pick<CheckpointStoreOptions, 'storage'>) => (opts.storage === 'memory' ? StorageType.Memory : StorageType.File);
const objectName = (version: number) => `v${String(version).padStart(10, '0')}`;

function checkVersion(version: number, field = 'version'): number {
  if (!Number.isSafeInteger(version) || version < 0) throw new Error(`${field} must be a non-negative integer, got ${version}`);
  return version;
}

export interface CheckpointWatch extends AsyncIterable<Announcement> {
  /** Stops the watch; a pending iteration ends. */
  stop(): Promise<void>;
}

/**
 * Checkpoint signing keys from the environment, for options that do not give them: every process of a run
 * (learner, rollout workers, orchestrator, evaluation) opens its store here, so setting the variables on each
 * process turns signing on without a flag per role. RECOVERY_GRPO_CHECKPOINT_KEY_FILE: the learner's ed25519
 * private key (it signs, and verifies with the matching public key); RECOVERY_GRPO_CHECKPOINT_PUBKEY_FILE: the
 * public key every reader verifies with.
 */
export function checkpointKeysFromEnv(opts: Pick<CheckpointStoreOptions, 'signingKey' | 'verifyKey'>, env: NodeJS.ProcessEnv = process.env): Pick<CheckpointStoreOptions, 'signingKey' | 'verifyKey'> {
  const privFile = env[CHECKPOINT_KEY_ENV.key]?.trim();
  const pubFile = env[CHECKPOINT_KEY_ENV.pubkey]?.trim();
  const signingKey = opts.signingKey ?? (privFile ? loadSigningKey(privFile) : undefined);
  const verifyKey = opts.verifyKey ?? (pubFile ? loadVerifyKey(pubFile) : signingKey ? createPublicKey(signingKey) : undefined);
  return { ...(signingKey ? { signingKey } : {}), ...(verifyKey ? { verifyKey } : {}) };
}

/** How long get() waits for a push that is still arriving before it reads the store instead. */
const PUSH_WAIT_MS = 2000;

/**
 * Buffers a follower that releases its checkpoints makes ready at its join beside the one it holds (get's `reuse`):
 * one, for the next push (and one more when the one it holds was read from the store, outside the pool); the pool
 * grows to POOL_KEEP by itself when a follower still holds a version while two newer ones arrive (checkpoint-buffers.ts).
 */
const RESERVED_BUFFERS = 1;

/** Reads of an object's chunks get() tries when a dropped connection cuts them short (readChunks). */
const READ_ATTEMPTS = 3;

/**
 * The announcement stream's limits: 10 000 announcements on the announcement subject, and no stream-wide count. With
 * a stream-wide `max_msgs` (before round 22, discard old) whatever the stream captured under other subjects (a push
 * consumer of another stream delivering into the announcement subject: such messages keep their own subject,
 * measured on nats-server 2.9.10) evicted the genuine announcements (docs/security.md). No direct gets: nobody reads
 * announcements that way, and a direct get's reply subject is unchecked, so with them a reader could have a stored
 * (signed) announcement republished onto the announcement subject as the newest one (round 22's review: a replayed
 * v0 became latest() for every role). A message get's reply is a JSON wrapper, which never parses as an announcement.
 */
const ANNOUNCEMENT_LIMITS = { allow_direct: false, max_msgs: -1, max_msgs_per_subject: 10_000 } as const;

/** How many announcements latest() looks back past ones without an object. */
const LATEST_LOOKBACK = 64;

export class CheckpointStore {
  readonly runId: string;
  readonly bucket: string;
  readonly stream: string;
  readonly subject: string;
  /** Pushed checkpoints, received while watch() runs. */
  private pushes: CheckpointPushReceiver | undefined;
  private pushWatchers = 0;
  /**
   * Set by a put's lookup that found the bucket's stream, and `dropped` at the connection's next drop; cleared when a
   * lookup fails or recreate() re-creates the bucket (a store lost without a drop: `nats stream rm`, an R1 stream on
   * another node). prune() trusts its own committed records (`committed` below) only while the `streamSeen` they were
   * committed under is still current and not dropped. Every put looks up (round 27's put: docs/transport.md).
   */
  private streamSeen: { dropped: boolean } | undefined;
  /**
   * The records this store's puts committed, by version, with the `streamSeen` of the time: prune() deletes such a
   * version without reading its record back (ObjectChunks.deleteCommitted) while that is still current and not
   * dropped; any other version (put by an earlier process, or before a drop or a loss: the store may have been lost
   * and re-created) after reading its record (ObjectChunks.delete).
   */
  private readonly committed = new Map<number, { record: CommittedRecord; seen: { dropped: boolean } | undefined }>();

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private os: ObjectStore | undefined,
    private readonly chunks: ObjectChunks,
    private readonly opts: CheckpointStoreOptions,
  ) {
    this.runId = opts.runId;
    this.bucket = checkpointBucket(opts.runId);
    this.stream = announcementStream(opts.runId);
    this.subject = announcementSubject(opts.runId);
  }

  /** Opens (creating when missing) the bucket and announcement stream of a run. */
  static async open(nc: NatsConnection, opts: CheckpointStoreOptions): Promise<CheckpointStore> {
    const runId = checkRunId(opts.runId);
    presizePayloads(nc);
    sendLargeUncopied(nc);
    failRequestsOnDisconnect(nc);
    const js = nc.jetstream();
    const jsm = await nc.jetstreamManager();
    const bucket = checkpointBucket(runId);
    const store = new CheckpointStore(nc, js, jsm, undefined, new ObjectChunks(nc, js, jsm, bucket), { ...opts, ...checkpointKeysFromEnv(opts), runId });
    if (!opts.readOnly) {
      try {
        // the owner checks an existing bucket's settings before nats.js opens it (refused, never updated: owned-stream.ts)
        await checkOwnedStream(jsm, objectStream(bucket), objectBucketSettings(bucket, storageOf(opts)));
        store.os = await js.views.os(bucket, bucketOptions(runId, opts));
        await store.ensureAnnouncements();
        await checkOwnedStream(jsm, store.stream, store.announcementSettings());
      } catch (e) {
        throw grantsNameAnotherRun(e, runId, [objectStream(bucket), store.stream]);
      }
      // a bucket from before round 35 holds a "deleted" record per pruned version, which keeps its old blocks on disk;
      // what is left of them after a failure is purged at the next open
      await store.chunks.dropDeletedRecords().catch((e: unknown) =>
        (opts.onWarning ?? ((m: string) => process.emitWarning(m)))(`${bucket}: purging the records of deleted checkpoints failed (their disk space stays until the next start): ${(e as Error).message}`));
    }
    return store;
  }

  private announcementSettings(): OwnedStreamSettings {
    return { subjects: [this.subject], storage: storageOf(this.opts), discard: DiscardPolicy.Old, ...ANNOUNCEMENT_LIMITS };
  }

  /** The object store; null while a read-only store's bucket does not exist yet (the learner makes it). */
  private async objectStore(): Promise<ObjectStore | null> {
    if (this.os) return this.os;
    const exists = await this.jsm.streams.info(this.chunks.stream).then(() => true, (e: unknown) => { if (isStoreLost(e)) return false; throw e; });
    // views.os only looks at an existing bucket (it creates a missing one, which a reader may not)
    return exists ? (this.os = await this.js.views.os(this.bucket, bucketOptions(this.runId, this.opts))) : null;
  }

  private ensureAnnouncements(): Promise<boolean> {
    const storage = storageOf(this.opts);
    return ensureStream(this.jsm, this.stream, () =>
      this.jsm.streams.add({ name: this.stream, subjects: [this.subject], storage, num_replicas: this.opts.replicas ?? 1, ...ANNOUNCEMENT_LIMITS, description: `checkpoint announcements of run ${this.runId}` }));
  }

  /**
   * The writer's (learner's) side of a lost store (store-loss.ts): re-creates the object bucket and the
   * announcement stream where missing. True when anything was re-created: the checkpoints the writer holds
   * must then be put again. Readers never call this.
   */
  async recreate(): Promise<boolean> {
    const bucket = await ensureStream(this.jsm, this.chunks.stream, () => this.js.views.os(this.bucket, bucketOptions(this.runId, this.opts)));
    if (bucket) this.streamSeen = undefined; // records committed before are read back by prune()
    const announcements = await this.ensureAnnouncements();
    return bucket || announcements;
  }

  /**
   * Stores checkpoint `version` and announces it. `digest` ("sha256:<hex>", see sha256Digest) must be the digest
   * of `bytes`: it is recomputed and a mismatch is refused. Idempotent: putting an existing version with the same
   * digest re-announces it; a different digest is refused. `opts.beforeAnnounce` is awaited after the bytes are
   * stored and before the announcement (a rejection fails the put, nothing announced).
   */
  async put(version: number, bytes: Uint8Array, digest: string, meta: Record<string, unknown> = {}, opts: { beforeAnnounce?: Promise<unknown> } = {}): Promise<Announcement> {
    checkVersion(version);
    if (!DIGEST_PATTERN.test(digest)) throw new Error(`digest must look like sha256:<64 hex>, got ${JSON.stringify(digest)}`);
    // the one pass over the bytes: Node's sha256, both the check of `digest` and the object's own digest
    const sha = createHash('sha256').update(bytes).digest();
    const actual = `sha256:${sha.toString('hex')}`;
    if (actual !== digest) throw new CheckpointIntegrityError(`checkpoint v${version}: given digest ${digest} is not the digest of the bytes (${actual})`);
    const name = objectName(version);
    const t0 = performance.now();
    // looked up before anything is sent: on this connection a request queued behind 50 MB of chunks can time out
    trace('put.start', { version });
    const seen = this.streamSeen?.dropped === false ? undefined : { dropped: false };
    if (seen) onDisconnect(this.nc, () => void (seen.dropped = true));
    // a missing stream is an error here (a lost store: the caller re-creates it), not "no such object"
    const found = await this.chunks.info(name).catch((e: unknown) => {
      this.streamSeen = undefined;
      throw e;
    });
    if (seen && !seen.dropped) this.streamSeen = seen;
    if (found && found.name !== name) throw new CheckpointIntegrityError(`checkpoint v${version}: the record stored under ${this.bucket}/${name} names ${JSON.stringify(found.name)} (replayed or tampered): refusing to write over it`);
    trace('put.info', { version });
    const stored = found && !found.deleted ? found : null;
    const same = stored?.metadata?.['digest'] === digest;
    if (stored && !same) {
      // An object that was never announced is a writer's leftover (it died between storing and announcing);
      // its retry may carry other bytes (e.g. a GPU step is not bit-reproducible): replace it. An announced
      // version is never replaced. A leftover is the newest thing stored: beyond the newest announcement, or, with
      // no announcement readable at all, the bucket's only object. Without announcements (lost, or evicted: docs/
      // security.md) an object beside others is taken to have been announced: replacing it would change the bytes
      // behind a version readers may hold.
      const latest = await this.latest();
      const leftover = latest ? latest.version < version : (await this.versions()).every((v) => v === version);
      if (!leftover) {
        throw new Error(`checkpoint v${version} already exists in ${this.bucket} with digest ${stored.metadata?.['digest']}, refusing to replace it with ${digest}` +
          (latest ? '' : ' (no announcement is readable, but the bucket holds other checkpoints: it was announced)'));
      }
    }
    // a retried put of the same bytes only repeats the announcement
    if (!same) {
      // the chunks carry headers naming the checkpoint: watchers subscribed to the chunk subjects assemble them as
      // they are stored (checkpoint-push.ts), so the bytes travel once; late joiners and a missed push read the store
      const metaJson = JSON.stringify(meta);
      const push = this.opts.push !== false ? (offset: number) => pushHeaders(version, bytes.length, offset, digest, metaJson) : undefined;
      const written = await this.chunks.writeChunks(bytes, push);
      trace('put.chunks', { version });
      const current = this.streamSeen;
      const record = await this.chunks.commit(name, written, bytes.length, sha, {
        description: `checkpoint v${version} of run ${this.runId}`,
        metadata: { version: String(version), digest, size: String(bytes.length), meta: JSON.stringify(meta) },
      });
      this.committed.set(version, { record, seen: current });
      if (stored) await this.chunks.purgeChunks(stored.nuid).catch(() => {});
      trace('put.commit', { version });
    }
    // a write that must be stored before anyone may use this version (the learner's AdamW moments), run beside the chunks
    if (opts.beforeAnnounce) await opts.beforeAnnounce;
    const signed = this.opts.signingKey ? { ...meta, signature: signCheckpoint(this.opts.signingKey, this.runId, version, digest, meta) } : meta;
    const ann: Announcement = { run_id: this.runId, version, name, digest, size: bytes.length, meta: signed, published_unix_ms: Date.now() };
    const h = headers();
    h.set('Nats-Msg-Id', `${name}-${digest.slice(7, 23)}`);
    await this.js.publish(this.subject, jc.encode(ann), { headers: h });
    trace('put.announced', { version });
    this.opts.onPut?.({ version, bytes: bytes.length, seconds: (performance.now() - t0) / 1000 });
    return ann;
  }

  /**
   * Fetches checkpoint `version` and verifies size and sha256 against what put() recorded (and `expectDigest`,
   * e.g. from an announcement or a CheckpointRef). Throws CheckpointIntegrityError on any mismatch, Error when the
   * version does not exist (never published, or pruned: fetch latest() instead).
   *
   * `release()` says that the caller holds no view of `bytes` any more: a pushed checkpoint's buffer is then reused for
   * a later one once the push receiver has moved on too, and detached (every view of it reads as empty;
   * checkpoint-buffers.ts). Without release() the bytes stay valid for good. `reuse: true` (a follower that releases
   * every checkpoint it replaces): from this first call on, buffers of this checkpoint's size are kept ready
   * (touched once) for the pushes that follow.
   */
  async get(version: number, opts: { expectDigest?: string; reuse?: boolean } = {}): Promise<{ bytes: Uint8Array; announcement: Announcement; release: () => void }> {
    checkVersion(version);
    const name = objectName(version);
    const t0 = performance.now();
    trace('get.start', { version });
    const pushed = opts.expectDigest !== undefined ? await this.pushes?.take(version, opts.expectDigest, PUSH_WAIT_MS) : undefined;
    trace('get.push', { version, held: !!pushed });
    if (pushed) {
      // verified on arrival: its sha256 is the expected (announced) digest
      if (opts.reuse) this.pushes?.buffers.reserve(pushed.bytes.length, RESERVED_BUFFERS);
      this.opts.onGet?.({ version, bytes: pushed.bytes.length, seconds: (performance.now() - t0) / 1000 });
      return {
        bytes: pushed.bytes,
        release: pushed.release,
        announcement: { run_id: this.runId, version, name, digest: pushed.digest, size: pushed.bytes.length, meta: pushed.meta, published_unix_ms: pushed.receivedUnixMs },
      };
    }
    const info = await this.record(name);
    if (!info || info.deleted) throw new Error(`checkpoint v${version} is not in ${this.bucket} (never published, or pruned: fetch the latest instead)`);
    const md = info.metadata ?? {};
    const digest = md['digest'];
    const size = Number(md['size']);
    if (!digest || !DIGEST_PATTERN.test(digest) || !Number.isSafeInteger(size)) {
      throw new CheckpointIntegrityError(`checkpoint v${version} in ${this.bucket} has no valid digest/size metadata: not written by CheckpointStore.put`);
    }
    if (opts.expectDigest !== undefined && opts.expectDigest !== digest) {
      throw new CheckpointIntegrityError(`checkpoint v${version}: stored digest ${digest} differs from the expected ${opts.expectDigest}`);
    }
    const bytes = await this.readChunks(version, name, info);
    if (bytes.length !== size) {
      throw new CheckpointIntegrityError(`checkpoint v${version} is truncated or padded: got ${bytes.length} bytes, its announcement says ${size}`);
    }
    const actual = sha256Digest(bytes);
    if (actual !== digest) throw new CheckpointIntegrityError(`checkpoint v${version}: digest mismatch, fetched ${actual}, expected ${digest}`);
    let meta: Record<string, unknown> = {};
    try {
      meta = JSON.parse(md['meta'] ?? '{}');
    } catch {
      /* meta is advisory */
    }
    // read from the store (a late joiner's first checkpoint): these bytes never return to the pool, so the two buffers
    // a follower cycles through (the version it holds, the one arriving) are both made now; with one, the second push
    // after the join landed in fresh memory (docs/performance-history/broadcast.md, "Round 14: bcast14")
    if (opts.reuse) this.pushes?.buffers.reserve(bytes.length, RESERVED_BUFFERS + 1);
    this.opts.onGet?.({ version, bytes: bytes.length, seconds: (performance.now() - t0) / 1000 });
    let released = false;
    return {
      bytes,
      // a buffer of its own, never reused (the garbage collector's once unreferenced)
      release: () => {
        if (released) throw new Error(`checkpoint v${version}: released twice`);
        released = true;
      },
      announcement: { run_id: this.runId, version, name, digest, size, meta, published_unix_ms: info.mtime ? Date.parse(info.mtime) : 0 },
    };
  }

  /**
   * The object's bytes, read again on the new connection when a drop cut a read short (READ_ATTEMPTS in all: its
   * requests wait for the reconnect themselves). A read that fails is not a CheckpointIntegrityError (which says the
   * bytes are wrong, and makes a follower refuse the version and a learner refuse to resume) but an Error naming the
   * checkpoint: unavailable for now, the callers retry (docs/reliability.md, "A read the connection drops under").
   * Except an object that holds fewer chunks than its info announces, found on a live connection and still the
   * stored object: that one is damaged, a CheckpointIntegrityError naming the object and version.
   */
  private async readChunks(version: number, name: string, info: Pick<ObjectInfo, 'nuid' | 'chunks' | 'size'>): Promise<Uint8Array> {
    const what = `${this.bucket}/${name}`;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.chunks.read(info, what);
      } catch (e) {
        if (e instanceof NatsDisconnectedError && attempt < READ_ATTEMPTS) {
          trace('get.reread', { version, attempt });
          continue;
        }
        if (e instanceof ObjectTruncatedError) {
          // damaged, unless the object was pruned or replaced under the read (its chunks purged: read the latest)
          const now = await this.chunks.info(name).catch(() => undefined);
          if (now && !now.deleted && now.nuid === info.nuid) throw new CheckpointIntegrityError(`checkpoint v${version}: ${what} is truncated: ${e.message} (read on a live connection)`, { cause: e });
          throw new Error(`checkpoint v${version}: reading ${what} failed: ${now === undefined ? 'its info cannot be read' : 'pruned or replaced during the read'} (${e.message})`, { cause: e });
        }
        throw new Error(`checkpoint v${version}: reading ${what} failed${attempt > 1 ? ` (${attempt} attempts)` : ''}: ${(e as Error)?.message ?? e}`, { cause: e });
      }
    }
  }

  /** The newest announcement, or null before the first checkpoint. */
  async latest(): Promise<Announcement | null> {
    let m: { data: Uint8Array; seq: number };
    try {
      m = await this.jsm.streams.getMessage(this.stream, { last_by_subj: this.subject });
    } catch (e) {
      if (/no message found|not found/i.test((e as Error).message)) return null;
      throw e;
    }
    // The newest announcement backed by its object: a forged or stray one (a huge version, no object) is
    // skipped, looking back at most LATEST_LOOKBACK announcements. Only a confirmed absence skips one: a read that
    // fails (a timeout, a dropped connection) throws, or a learner restarting at that moment would resume from an
    // older version than the one the orchestrator acknowledged, and the run would stall (review24d).
    for (let seq = m.seq, n = 0; seq > 0 && n < LATEST_LOOKBACK; seq--, n++) {
      const raw = seq === m.seq ? m.data : await this.jsm.streams.getMessage(this.stream, { seq }).then(
        (x) => (x.subject === this.subject ? x.data : null),
        (e: unknown) => { if (/no message found|not found/i.test((e as Error).message)) return null; throw e; },
      );
      if (!raw) continue;
      let ann: Announcement;
      try {
        ann = parseAnnouncement(raw, this.subject);
      } catch {
        continue;
      }
      if (await this.backed(ann)) return ann;
    }
    return null;
  }

  /**
   * The object record stored under `name`, or null. A record that names another object was replayed there (a direct
   * get's reply subject is unchecked, docs/security.md): a CheckpointIntegrityError, never "not stored", so that no
   * caller takes an older version for the newest or replaces the one under attack.
   */
  private async record(name: string) {
    const os = await this.objectStore();
    const info = os ? await os.info(name) : null;
    if (info && info.name !== name) throw new CheckpointIntegrityError(`${this.bucket}/${name}: the record stored under it names ${JSON.stringify(info.name)} (replayed or tampered)`);
    return info;
  }

  /**
   * True when the announcement's object exists under its version's name with the announced digest. An
   * announcement without one (written by anyone who can publish on the subject) must not make readers wait
   * for a version that never comes. False only when the store answered: a record that cannot be read (a timeout, a
   * dropped connection) is an error, never "not stored".
   */
  private async backed(ann: Announcement): Promise<boolean> {
    if (ann.name !== objectName(ann.version) || ann.run_id !== this.runId) return false;
    if (this.opts.verifyKey && !verifyCheckpoint(this.opts.verifyKey, this.runId, ann.version, ann.digest, ann.meta, ann.meta['signature'])) return false;
    // bytes in hand whose sha256 is the announced digest back it as well as the stored object would
    if (this.pushes?.holds(ann.version, ann.digest)) return true;
    const info = await this.record(ann.name);
    return !!info && !info.deleted && info.metadata?.['digest'] === ann.digest;
  }

  /** How many messages the announcement stream holds on the announcement subject (backed or not). */
  async announcementCount(): Promise<number> {
    const si = await this.jsm.streams.info(this.stream, { subjects_filter: this.subject });
    return si.state.subjects?.[this.subject] ?? 0;
  }

  /**
   * The meta put() stored with checkpoint `version` (what its announcement carried, without the signature), read from
   * the object's metadata without its bytes; null when the version is not stored (never published, or pruned) or its
   * meta is not a JSON object.
   */
  async storedMeta(version: number): Promise<Record<string, unknown> | null> {
    const info = await this.record(objectName(checkVersion(version)));
    if (!info || info.deleted) return null;
    try {
      const meta: unknown = JSON.parse(info.metadata?.['meta'] ?? '');
      return meta && typeof meta === 'object' && !Array.isArray(meta) ? (meta as Record<string, unknown>) : null;
    } catch {
      return null;
    }
  }

  /**
   * Versions present in the bucket, ascending: the records the stream holds, read one subject at a time
   * (object-listing.ts: no consumer, and no empty answer while the stream holds records).
   */
  async versions(): Promise<number[]> {
    const list = await listObjectRecords(this.jsm, this.chunks.stream, this.bucket);
    return list
      .filter((i) => !i.deleted && /^v\d{10}$/.test(i.name))
      .map((i) => Number(i.name.slice(1)))
      .sort((a, b) => a - b);
  }

  /**
   * Deletes all but the newest `keepLast` (>= 1) checkpoints, except the versions in `opts.keep` (e.g. the frozen
   * KL reference a learner still needs), which are never deleted whatever their age; versions in `keep` that are
   * not stored are ignored. Returns the deleted versions, ascending. `opts.stored`: the versions the caller knows the
   * bucket holds (the learner's own record of what it put and deleted), in place of listing the bucket, which costs
   * the writer and nats-server more than the deletes themselves (docs/performance-history/pipeline.md, "Round 12: pipe12").
   */
  async prune(keepLast: number, opts: { keep?: Iterable<number>; stored?: Iterable<number> } = {}): Promise<number[]> {
    if (!Number.isInteger(keepLast) || keepLast < 1) throw new Error(`prune: keepLast must be an integer >= 1, got ${keepLast}`);
    const keep = new Set<number>();
    for (const v of opts.keep ?? []) keep.add(checkVersion(v, 'prune: keep version'));
    const all = opts.stored ? [...new Set(Array.from(opts.stored, (v) => checkVersion(v, 'prune: stored version')))].sort((a, b) => a - b) : await this.versions();
    const doomed = all.slice(0, Math.max(0, all.length - keepLast)).filter((v) => !keep.has(v));
    const os = await this.objectStore();
    if (this.opts.readOnly || !os) throw new Error(`prune: the read-only store of run ${this.runId} deletes nothing`);
    for (const v of doomed) {
      const c = this.committed.get(v);
      // committed by this store since the last drop: deleted without reading the record back
      if (c && c.seen !== undefined && c.seen === this.streamSeen && !c.seen.dropped) await this.chunks.deleteCommitted(c.record);
      else await this.chunks.delete(objectName(v));
      this.committed.delete(v);
    }
    return doomed;
  }

  /**
   * Announcements, newest existing one first, then each new one; versions strictly increase (older or repeated
   * announcements are skipped). Malformed announcements are skipped and reported to onInvalid; an announcement
   * whose checkpoint is gone while newer ones wait behind it (pruned: a watcher that fell behind) is skipped and
   * reported to onSuperseded.
   *
   * No consumer (the roles that read checkpoints may not make one: docs/security.md): a core subscription to the
   * announcement subject, made first, then the newest stored announcement (latest(), read once the subscription is
   * in place, so nothing announced in between is missed), and latest() again after each reconnect (what was
   * announced while the connection was down never reaches a core subscription). If the join fails (the
   * subscription, the first latest()), everything it set up is undone before the error is thrown.
   */
  async watch(opts: { onInvalid?: (err: Error) => void; onSuperseded?: (ann: Announcement) => void; onCatchUpError?: (err: Error) => void } = {}): Promise<CheckpointWatch> {
    // subscribed before the first read, so that a checkpoint announced from now on is pushed to this store
    const pushes = (this.pushes ??= new CheckpointPushReceiver(this.nc, this.bucket));
    this.pushWatchers++;
    let stopped = false;
    const unwatch = () => {
      if (stopped) return;
      stopped = true;
      if (--this.pushWatchers === 0) {
        pushes.stop();
        if (this.pushes === pushes) this.pushes = undefined;
      }
    };
    const subject = this.subject;
    // An announcement published while this connection was down never reaches the subscription: after each reconnect
    // the newest announcement is read from the stream (latest(): backed and signed), so a follower that lost its
    // connection mid-push catches up at once instead of waiting for the next checkpoint (docs/transport.md).
    const status = this.nc.status() as AsyncIterable<{ type: string }> & { stop?: () => void };
    // the announcements received, in order; wake() tells the iteration that something happened
    const queue: Uint8Array[] = [];
    let wake = () => {};
    let closed = false;
    let caughtUp = true;
    let sub: Subscription | undefined;
    let first: Announcement | null;
    try {
      sub = this.nc.subscribe(subject, {
        callback: (err, m) => {
          // a stored message replayed into the subject by a direct get's reply is not an announcement (STREAM_HEADER)
          if (!err && !m.headers?.has(STREAM_HEADER)) queue.push(m.data);
          trace('watch.arrived', { queued: queue.length });
          wake();
        },
      });
      void sub.closed.then(() => {
        closed = true;
        wake();
      });
      await this.nc.flush();
      first = await this.latest();
    } catch (e) {
      sub?.unsubscribe();
      status.stop?.();
      unwatch();
      throw e;
    }
    const messages = sub;
    // the young generation's first scavenges at the join, not in the first checkpoints' path (read-memory.ts)
    settleYoungGeneration();
    const backed = (a: Announcement) => this.backed(a);
    const latest = () => this.latest();
    const verifying = this.opts.verifyKey !== undefined;
    void (async () => {
      for await (const s of status) {
        if (s.type !== 'reconnect') continue;
        caughtUp = false;
        wake();
      }
    })().catch(() => {});
    let last = -1;
    async function* iterate(): AsyncGenerator<Announcement> {
      try {
        if (first && first.version > last) {
          last = first.version;
          trace('watch.backed', { version: first.version });
          yield first;
        }
        for (;;) {
          if (!caughtUp) {
            caughtUp = true;
            const ann = await catchUpLatest(latest, () => stopped, opts.onCatchUpError);
            trace('watch.reconnected', { version: ann?.version ?? -1 });
            if (ann && ann.version > last) {
              last = ann.version;
              yield ann;
            }
            continue;
          }
          const data = queue.shift();
          if (data === undefined) {
            if (closed || stopped) break;
            await new Promise<void>((r) => (wake = r));
            continue;
          }
          let ann: Announcement;
          trace('watch.msg', { queued: queue.length });
          try {
            ann = parseAnnouncement(data, subject);
          } catch (e) {
            opts.onInvalid?.(e as Error);
            continue;
          }
          if (ann.version <= last) continue;
          let isBacked: boolean;
          try {
            isBacked = await backed(ann);
          } catch (e) {
            // a replayed or tampered record: said, and this announcement skipped (latest() refuses it outright)
            opts.onInvalid?.(e as Error);
            continue;
          }
          if (!isBacked) {
            // more announcements queued behind this one: its checkpoint was pruned while this watcher lagged
            if (queue.length > 0) {
              opts.onSuperseded?.(ann);
              continue;
            }
            opts.onInvalid?.(new Error(`${subject}: announcement of v${ann.version} has no checkpoint object with digest ${ann.digest}${verifying ? ', or is not signed by the learner\'s key' : ''}: ignored`));
            continue;
          }
          last = ann.version;
          trace('watch.backed', { version: ann.version });
          yield ann;
        }
      } finally {
        messages.unsubscribe();
        status.stop?.();
      }
    }
    const gen = iterate();
    return {
      [Symbol.asyncIterator]: () => gen,
      stop: async () => {
        messages.unsubscribe();
        status.stop?.();
        wake();
        await gen.return(undefined);
        unwatch();
      },
    };
  }
}

/** Delays between the tries of a watcher's catch-up read after a reconnect (the connection may still be settling). */
export const CATCH_UP_RETRY_MS: readonly number[] = [200, 1000];

/**
 * A watcher's catch-up after a reconnect: the newest announcement (latest()), tried again after each delay in
 * `retryMs` while it throws; when every try failed, the last error goes to onError (the watcher then waits for the
 * next announcement, as it would without the catch-up) and null is returned. Stops trying once stopped() is true.
 */
export async function catchUpLatest(
  latest: () => Promise<Announcement | null>, stopped: () => boolean, onError?: (err: Error) => void,
  retryMs: readonly number[] = CATCH_UP_RETRY_MS,
): Promise<Announcement | null> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await latest();
    } catch (e) {
      if (attempt >= retryMs.length || stopped()) {
        onError?.(new Error(`catching up after a reconnect: reading the newest checkpoint announcement failed ${attempt + 1} time(s): ${(e as Error).message}; waiting for the next announcement`));
        return null;
      }
      await sleep(retryMs[attempt]);
    }
  }
}

function parseAnnouncement(raw: Uint8Array, subject: string): Announcement {
  let json: unknown;
  try {
    json = jc.decode(raw);
  } catch {
    throw new Error(`${subject}: announcement is not JSON`);
  }
  const fast = checkAnnouncement(json);
  if (fast) return fast;
  const r = AnnouncementSchema.safeParse(json);
  if (!r.success) throw new Error(formatIssues(`${subject} announcement`, r.error));
  return r.data;
}

// ---------------------------------------------------------------------------------------------------
// run state

export class RevisionConflictError extends Error {
  constructor(
    readonly bucket: string,
    readonly key: string,
    readonly expectedRevision: number | null,
  ) {
    super(
      expectedRevision === null
        ? `${bucket}/${key}: already exists (another orchestrator created it first)`
        : `${bucket}/${key}: revision ${expectedRevision} is no longer current (another writer updated it): re-read and retry`,
    );
    this.name = 'RevisionConflictError';
  }
}

export interface RunStateStoreOptions<S extends z.ZodType> {
  runId: string;
  schema: S;
  /** Key in the bucket. Default RUN_STATE_KEY ('state': the one key the orchestrator's NATS grant writes). */
  key?: string;
  /** Revisions kept per key. Default 5. */
  history?: number;
  replicas?: number;
  storage?: 'file' | 'memory';
}

export interface Versioned<T> {
  value: T;
  revision: number;
}

const kvOptions = (opts: Pick<RunStateStoreOptions<z.ZodType>, 'history' | 'replicas' | 'storage'>) => ({
  history: opts.history ?? 5,
  replicas: opts.replicas ?? 1,
  storage: opts.storage === 'memory' ? StorageType.Memory : StorageType.File,
});

function isWrongLastSequence(e: unknown): boolean {
  const msg = (e as Error)?.message ?? '';
  return /wrong last sequence|key exists/i.test(msg) || (e as { api_error?: { err_code?: number } })?.api_error?.err_code === 10071;
}

const runStateApis = new WeakMap<NatsConnection, Promise<string>>();
/** Whether `data` is JetStream's answer to an account-info request (what the run state's account answers). */
function isAccountInfo(data: Uint8Array): boolean {
  try {
    return (JSON.parse(new TextDecoder().decode(data)) as { type?: unknown }).type === 'io.nats.jetstream.api.v1.account_info_response';
  } catch {
    return false;
  }
}

/**
 * The JetStream API prefix the run state is reached at on `nc`'s server: RUN_STATE_API where the server runs the
 * accounts of natsAccountsBlock (the run state in its own account, lib/transport/nats-permissions.ts), the default
 * `$JS.API` on a server without them (nothing answers RUN_STATE_API there, or something that is not JetStream does).
 */
export function runStateApiPrefix(nc: NatsConnection): Promise<string> {
  let p = runStateApis.get(nc);
  if (!p) {
    p = nc.request(`${RUN_STATE_API}.INFO`, undefined, { timeout: 10_000 }).then(
      // only JetStream's own answer says the account is there: on a server without the accounts, a stream whose
      // subjects cover RS.> answers with a publish ack (review23f)
      (m) => (isAccountInfo(m.data) ? RUN_STATE_API : '$JS.API'),
      (e: unknown) => {
        if ((e as { code?: unknown })?.code === '503') return '$JS.API';
        runStateApis.delete(nc);
        throw new Error(`cannot tell where the run state's JetStream API is (${RUN_STATE_API}.INFO; on a server without the accounts, a subscriber to it that never answers delays this): ${(e as Error).message}`, { cause: e });
      },
    );
    runStateApis.set(nc, p);
  }
  return p;
}

/**
 * `e`, or a SetupError where it is the server refusing this connection the creation, look-up or update of one of
 * the run's own `streams` at open: the grants of its user (nats.conf, lib/transport/nats-permissions.ts) name
 * another run, as when `run.id` changed without the config being regenerated. A restart gets the same refusal, so
 * the role ends (exit 78) saying how to regenerate the grants, rather than being restarted for ever.
 */
function grantsNameAnotherRun(e: unknown, runId: string, streams: readonly string[]): unknown {
  const refused = permissionRefusal(e);
  const api = refused?.operation === 'publish' ? /\.STREAM\.(?:CREATE|INFO|UPDATE)\.([^.]+)$/.exec(refused.subject ?? '') : null;
  if (!api || !streams.includes(api[1]!)) return e;
  return new SetupError(`run ${runId}: the NATS grants of this connection's user do not name run ${runId} (${(e as Error).message}): `
    + `was run.id changed without regenerating the server's config? Write its grants for this run with \`node --import tsx scripts/gen-nats-conf.ts --run=${runId}\``
    + ` (Kubernetes: \`--overlay <dir>\` reads the overlay's run.yaml; then re-apply nats.conf and restart NATS; docs/security.md)`, { cause: e });
}

/**
 * A zod-validated JSON document in a JetStream KV bucket (`runstate-<runId>`), with revision-checked writes:
 * create() fails if it exists, update() fails if someone else wrote since `revision`, modify() retries
 * read-change-write until it wins. Two orchestrators therefore can never silently overwrite each other.
 */
export class RunStateStore<S extends z.ZodType> {
  readonly bucket: string;
  readonly key: string;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly kv: KV,
    private readonly schema: S,
    bucket: string,
    key: string,
    private readonly bucketOpts: ReturnType<typeof kvOptions>,
    private readonly apiPrefix: string,
  ) {
    this.bucket = bucket;
    this.key = key;
  }

  static async open<S extends z.ZodType>(nc: NatsConnection, opts: RunStateStoreOptions<S>): Promise<RunStateStore<S>> {
    const runId = checkRunId(opts.runId);
    const key = opts.key ?? RUN_STATE_KEY;
    if (!/^[-/=.\w]+$/.test(key)) throw new Error(`run state key ${JSON.stringify(key)} has characters NATS KV does not allow`);
    const bucket = runStateBucket(runId);
    const bucketOpts = kvOptions(opts);
    failRequestsOnDisconnect(nc);
    const apiPrefix = await runStateApiPrefix(nc);
    const kv = await nc.jetstream({ apiPrefix }).views.kv(bucket, bucketOpts).catch((e: unknown) => { throw grantsNameAnotherRun(e, runId, [kvStream(bucket)]); });
    return new RunStateStore(nc, kv, opts.schema, bucket, key, bucketOpts, apiPrefix);
  }

  /**
   * The owner's (orchestrator's) side of a lost store (store-loss.ts): re-creates the bucket when missing; true
   * when it did (the value is gone: create() it again from what the owner holds). Readers never call this.
   */
  async recreate(): Promise<boolean> {
    const jsm = await this.nc.jetstreamManager({ apiPrefix: this.apiPrefix });
    return ensureStream(jsm, `KV_${this.bucket}`, () => this.nc.jetstream({ apiPrefix: this.apiPrefix }).views.kv(this.bucket, this.bucketOpts));
  }

  private encode(value: z.infer<S>, what: string): Uint8Array {
    const r = this.schema.safeParse(value);
    if (!r.success) throw new Error(formatIssues(`${what} ${this.bucket}/${this.key}`, r.error));
    return jc.encode(r.data);
  }

  /** The current value and its revision, or null if never written (or deleted). */
  async get(): Promise<Versioned<z.infer<S>> | null> {
    const e = await this.kv.get(this.key);
    if (!e || e.operation !== 'PUT' || e.length === 0) return null;
    let json: unknown;
    try {
      json = e.json();
    } catch {
      throw new Error(`run state ${this.bucket}/${this.key} (revision ${e.revision}) is not JSON`);
    }
    const r = this.schema.safeParse(json);
    if (!r.success) throw new Error(formatIssues(`run state ${this.bucket}/${this.key} (revision ${e.revision})`, r.error));
    return { value: r.data, revision: e.revision };
  }

  /** Writes the first value; RevisionConflictError if a value exists. Returns the new revision. */
  async create(value: z.infer<S>): Promise<number> {
    const data = this.encode(value, 'create');
    try {
      return await this.kv.create(this.key, data);
    } catch (e) {
      if (isWrongLastSequence(e)) throw new RevisionConflictError(this.bucket, this.key, null);
      throw e;
    }
  }

  /** Writes `value` if the stored revision is still `revision`; RevisionConflictError otherwise. */
  async update(value: z.infer<S>, revision: number): Promise<number> {
    const data = this.encode(value, 'update');
    try {
      return await this.kv.update(this.key, data, revision);
    } catch (e) {
      if (isWrongLastSequence(e)) throw new RevisionConflictError(this.bucket, this.key, revision);
      throw e;
    }
  }

  // No unconditional put(): the run state is written only by compare-and-set (create, update, modify), so a
  // second writer can never overwrite it silently (issue #16).

  /**
   * Read-modify-write with CAS: applies `fn` to the current value (null if none) and writes the result; on a
   * conflict re-reads and re-applies, up to maxRetries (default 10) times.
   */
  async modify(fn: (current: z.infer<S> | null) => z.infer<S> | Promise<z.infer<S>>, { maxRetries = 10 } = {}): Promise<Versioned<z.infer<S>>> {
    for (let i = 0; ; i++) {
      const cur = await this.get();
      const next = await fn(cur ? cur.value : null);
      try {
        const revision = cur ? await this.update(next, cur.revision) : await this.create(next);
        return { value: next, revision };
      } catch (e) {
        if (!(e instanceof RevisionConflictError) || i >= maxRetries) throw e;
      }
    }
  }
}
