// Where the learner keeps its optimizer state: a JetStream object store of its own (objects
// `<runId>/optim-v0000000042`), which no follower opens and which no other role's NATS user may read: the run's own
// bucket `learner-state-<runId>` where the NATS grants name the run (round 25: stateBucketOf), else `learner-state`,
// one for every run, whose name is fixed so that lib/transport/nats-permissions.ts can deny it by name under a grant
// for every run (a per-run bucket name is one token NATS wildcards cannot pick out). One object per version (lib/checkpoint/optimizer-state.ts),
// written BEFORE the checkpoint of that version is published, so every published checkpoint has its moments
// (a kill -9 between the two leaves moments for an unpublished version, which the re-applied batch
// overwrites). Only the newest two are kept.
// In a signed run the state is verified like the checkpoint it belongs to: the learner records its sha256 in the
// checkpoint's announcement (meta.optimizer_digest, STATE_DIGEST_KEY), which the learner's ed25519 signature covers
// (lib/checkpoint/sign.ts, v2 signs the meta), and a restarted learner reads the state only when its bytes have that
// digest (get's expectDigest; docs/security.md). Other NATS writers are kept out by permissions alone otherwise.
// The bytes are written by ObjectChunks (Node's sha256, 1 MiB chunks in a window) rather than nats.js's putBlob
// (a JavaScript SHA-256 over the moments, twice the parameters' size, and 128 KiB chunks in sequence): the
// learner writes them on every version, before it answers (docs/performance-history/pipeline.md).
import type { JetStreamManager, NatsConnection, ObjectStore } from 'nats';
import { createHash, randomUUID } from 'node:crypto';
import { StorageType } from 'nats';
import { checkRunId, ensureStream, sha256Digest } from '../transport/index.ts';
import { LEARNER_STATE_BUCKET } from '../transport/nats-permissions.ts';
import { learnerStateBucket } from '../transport/run-names.ts';
import { checkOwnedStream, objectBucketSettings } from '../transport/owned-stream.ts';
import { ObjectChunks } from '../transport/object-chunks.ts';
import { objectDigest, objectDigestMatches } from '../transport/object-digest.ts';
import { listObjectRecords } from '../transport/object-listing.ts';
import { isStreamNotFound } from '../transport/store-loss.ts';
import { decodeOptimizerState, encodeOptimizerState, type OptimizerStateFile } from '../checkpoint/optimizer-state.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';

const KEEP = 2;

/**
 * Announcement meta key of the sha256 ("sha256:<hex>") of the learner's state of that version, as
 * encodeOptimizerState wrote it: signed with the announcement in a signed run.
 */
export const STATE_DIGEST_KEY = 'optimizer_digest';

/** A stored state whose bytes are not the ones the learner's (signed) announcement records: never used. */
export class UnverifiedStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnverifiedStateError';
  }
}

/**
 * The bytes of object `name` (null when none is stored, or it was deleted), read by direct gets (ObjectChunks.read), not
 * by nats.js's getBlob (an ordered consumer: no role makes consumers, docs/security.md); its size and SHA-256 are checked
 * against its info, as getBlob checks them.
 */
async function readObject(chunks: ObjectChunks, name: string): Promise<Uint8Array | null> {
  const info = await chunks.info(name);
  if (!info || info.deleted) return null;
  const bytes = await chunks.read(info, `${chunks.bucket}/${name}`);
  const sha = createHash('sha256').update(bytes).digest();
  // compared by the bytes the record names, in any form nats.js reads (object-digest.ts)
  if (bytes.length !== info.size || !objectDigestMatches(info.digest, sha)) {
    throw new Error(`${chunks.bucket}/${name}: read ${bytes.length} bytes with ${objectDigest(sha)}, but its info records ${info.size} bytes with ${String(info.digest)}`);
  }
  return bytes;
}

/**
 * Refuses `stream` where direct gets are off (the reads here are direct gets). Round 25: the learner no longer turns
 * them on itself (no role may update a stream: docs/security.md), so an operator does, or the run starts afresh.
 */
async function requireDirect(jsm: JetStreamManager, stream: string): Promise<void> {
  const { config } = await jsm.streams.info(stream);
  if (!config.allow_direct) throw new Error(`stream ${stream}: allow_direct: has false, expected true (its objects are read by direct gets; an operator turns them on: nats stream edit ${stream} --allow-direct, in the STREAMS account)`);
}

/**
 * The bucket of `runId`'s moments: the run's own, learnerStateBucket(runId), where this connection's NATS grants
 * name the run (round 25: another run's learner can then neither write nor purge them); the shared
 * LEARNER_STATE_BUCKET under a grant for every run, or on a server without grants, as before. Told apart by what the
 * grant allows, without changing anything: only a grant for every run may purge the shared bucket, so a purge that
 * matches nothing there (a subject no object has) is refused under a grant naming the run, and answered otherwise
 * (nothing purged, or the stream not found). Any other failure is thrown: the learner's start is retried.
 */
export async function stateBucketOf(jsm: JetStreamManager, runId: string): Promise<string> {
  const probe = `$O.${LEARNER_STATE_BUCKET}.C.grants-probe-${randomUUID().replaceAll('-', '')}`;
  try {
    await jsm.streams.purge(`OBJ_${LEARNER_STATE_BUCKET}`, { filter: probe });
  } catch (e) {
    if (/permission/i.test((e as Error).message)) return learnerStateBucket(runId);
    // only an answer tells: a timeout or a dropped connection says nothing about the grant, and guessing the shared
    // bucket under a grant naming the run left every later write of the moments refused, for ever (review25e)
    if (!isStreamNotFound(e)) throw new Error(`cannot tell which bucket holds run ${runId}'s optimizer state (its grants probe failed: ${(e as Error).message})`, { cause: e });
  }
  return LEARNER_STATE_BUCKET;
}


export class LearnerStateStore {
  /** Versions this store wrote and has not deleted; undefined until the bucket was listed once (by prune). */
  private known: Set<number> | undefined;
  /** Versions this process has tried to write (a retry, or an attempt that failed, may have left an object). */
  private readonly attempted = new Set<number>();

  private constructor(
    private readonly nc: NatsConnection,
    private readonly os: ObjectStore,
    private readonly chunks: ObjectChunks,
    readonly bucket: string,
    private readonly options: { storage: StorageType; description: string },
    private readonly runId: string,
  ) {}

  static async open(nc: NatsConnection, runId: string): Promise<LearnerStateStore> {
    checkRunId(runId);
    const jsm = await nc.jetstreamManager();
    const bucket = await stateBucketOf(jsm, runId);
    const options = { storage: StorageType.File, description: bucket === LEARNER_STATE_BUCKET ? 'recovery-grpo learner optimizer state (objects <run id>/optim-v<version>)' : `recovery-grpo learner optimizer state of run ${runId} (objects <run id>/optim-v<version>)` };
    // its reads are direct gets (no consumer: docs/security.md; a bucket made before round 23 may lack them), and no
    // stream made by another with settings of its own (a republish, sources, an expiry) is used: refused, naming the
    // stream and the setting (round 25: never updated, owned-stream.ts checkOwnedStream)
    await checkOwnedStream(jsm, `OBJ_${bucket}`, objectBucketSettings(bucket, options.storage));
    const os = await nc.jetstream().views.os(bucket, options);
    const chunks = new ObjectChunks(nc, nc.jetstream(), jsm, bucket);
    // a bucket from before round 35 holds a "deleted" record per pruned version, which keeps its old blocks on disk
    // (object-chunks.ts dropDeletedRecords); what a failure leaves is purged at the next open
    await chunks.dropDeletedRecords().catch((e: unknown) =>
      process.emitWarning(`${bucket}: purging the records of deleted optimizer states failed (their disk space stays until the next start): ${(e as Error).message}`));
    return new LearnerStateStore(nc, os, chunks, bucket, options, runId);
  }

  private objectName(version: number): string {
    return `${this.runId}/optim-v${String(version).padStart(10, '0')}`;
  }

  /**
   * The moments a learner stored before this bucket existed, in its run's own bucket `learner-<runId>` (rounds <= 5):
   * read so that a run resumed across the upgrade keeps its AdamW state; null when that bucket does not exist.
   */
  private async legacy(version: number): Promise<Uint8Array | null> {
    const old = `learner-${this.runId}`;
    const jsm = await this.nc.jetstreamManager();
    if (!(await jsm.streams.info(`OBJ_${old}`).then(() => true, () => false))) return null;
    await requireDirect(jsm, `OBJ_${old}`);
    return readObject(new ObjectChunks(this.nc, this.nc.jetstream(), jsm, old), `optim-v${String(version).padStart(10, '0')}`);
  }

  /** Object `name` of the shared bucket (LEARNER_STATE_BUCKET); null when that bucket or the object does not exist. */
  private async shared(name: string): Promise<Uint8Array | null> {
    const jsm = await this.nc.jetstreamManager();
    if (!(await jsm.streams.info(`OBJ_${LEARNER_STATE_BUCKET}`).then(() => true, () => false))) return null;
    await requireDirect(jsm, `OBJ_${LEARNER_STATE_BUCKET}`); // made before round 22: the error names the edit (review25f)
    return readObject(new ObjectChunks(this.nc, this.nc.jetstream(), jsm, LEARNER_STATE_BUCKET), name);
  }

  /** Re-creates the bucket when the server lost it (lib/transport/store-loss.ts); true when it did. */
  async recreate(): Promise<boolean> {
    this.known = undefined;
    return ensureStream(await this.nc.jetstreamManager(), `OBJ_${this.bucket}`, () => this.nc.jetstream().views.os(this.bucket, this.options));
  }

  /** Stores the moments of `f.version` (replacing any earlier attempt at that version); returns the bytes written. */
  async put(f: OptimizerStateFile): Promise<number> {
    return this.putEncoded(f.version, encodeOptimizerState(f));
  }

  /**
   * Stores moments already encoded by encodeOptimizerState (its sha256 hex `digest` of `bytes`, computed once there):
   * the learner encodes them from the optimizer's live state once per version and retries with the same bytes.
   */
  async putEncoded(version: number, { bytes, digest }: { bytes: Uint8Array; digest: string }): Promise<number> {
    const name = this.objectName(version);
    // an earlier attempt at this version (a retry, or a process killed before announcing it) is replaced: its info is
    // looked up beside the new chunks (it is answered before they are committed), not before them, on the critical
    // path at staleness 0 (docs/performance-history/pipeline.md, "Round 12: pipe12"). No lookup where none can exist: the bucket was
    // listed (every earlier process's versions are in `known`), the version is not among them, and this process has
    // not tried it before (docs/performance-history/pipeline.md, "Round 14: lrn14").
    const absent = this.known !== undefined && !this.known.has(version) && !this.attempted.has(version);
    this.attempted.add(version);
    const lookup = absent ? Promise.resolve(null) : this.os.info(name);
    lookup.catch(() => undefined); // handled below, after the chunks
    let written: { nuid: string; chunks: number };
    try {
      written = await this.chunks.writeChunks(bytes);
    } catch (e) {
      await lookup.catch(() => undefined);
      throw e;
    }
    const earlier = await lookup.catch(async (e) => {
      await this.chunks.purgeChunks(written.nuid).catch(() => {});
      throw e;
    });
    await this.chunks.commit(name, written, bytes.length, Buffer.from(digest, 'hex'), { description: `AdamW state of version ${version}`, metadata: {} });
    if (earlier && !earlier.deleted) await this.chunks.purgeChunks(earlier.nuid).catch(() => {});
    this.known?.add(version);
    return bytes.length;
  }

  /**
   * The moments of checkpoint `version` (digest `checkpointDigest`, parameters `params`), or null when none were
   * stored. With `expectDigest` (the announcement's STATE_DIGEST_KEY, in a signed run), bytes with another sha256
   * are refused (UnverifiedStateError naming the object and both digests) before they are decoded.
   */
  async get(version: number, checkpointDigest: string, params: TensorMap, opts: { expectDigest?: string } = {}): Promise<OptimizerStateFile | null> {
    const name = this.objectName(version);
    let source = `${this.bucket}/${name}`;
    let bytes = await readObject(this.chunks, name);
    if (!bytes && this.bucket !== LEARNER_STATE_BUCKET) {
      // a run resumed across round 25: its moments of before are in the shared bucket (same object name), which
      // its learner still reads (direct gets), never writes or purges under a grant naming the run
      bytes = await this.shared(name);
      source = `${LEARNER_STATE_BUCKET}/${name}`;
    }
    if (!bytes) {
      bytes = await this.legacy(version);
      source = `learner-${this.runId}/optim-v${String(version).padStart(10, '0')}`;
    }
    if (!bytes) return null;
    if (opts.expectDigest !== undefined) {
      const actual = sha256Digest(bytes);
      if (actual !== opts.expectDigest) {
        throw new UnverifiedStateError(`${source}: its sha256 is ${actual}, but the learner's announcement of checkpoint v${version} records ${STATE_DIGEST_KEY} ${opts.expectDigest}: not the state the learner stored`);
      }
    }
    return decodeOptimizerState(bytes, { checkpointDigest, params, source });
  }

  /**
   * Deletes all but the newest KEEP versions at or below `latest`. The bucket is listed once (leftovers of earlier
   * processes); after that this store deletes what it wrote, without listing the bucket on every version.
   */
  async prune(latest: number): Promise<void> {
    if (!this.known) {
      const listed = new Set<number>();
      const own = new RegExp(`^${this.runId}/optim-v(\\d+)$`);
      for (const info of await listObjectRecords(this.chunks.jsm, this.chunks.stream, this.bucket)) {
        const v = own.exec(info.name)?.[1];
        if (v !== undefined && !info.deleted) listed.add(Number(v));
      }
      this.known = listed;
    }
    for (const v of [...this.known].sort((a, b) => a - b)) {
      if (v > latest - KEEP) break;
      // its record purged, no "deleted" record left behind: the bucket's disk use stays bounded (object-chunks.ts)
      await this.chunks.delete(this.objectName(v));
      this.known.delete(v);
      this.attempted.delete(v);
    }
  }
}
