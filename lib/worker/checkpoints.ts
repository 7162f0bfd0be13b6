// Checkpoints as the roles move them through the CheckpointStore: fetch + verify (object digest, file digest,
// parameter names and shapes, run id, version) and publish (encode, digest, put). Every refusal is an Error
// naming the checkpoint and the problem; nothing half-verified is ever returned.
import { BATCH_LAYOUT_META_KEY, type BatchLayout } from '../grpo/sampling.ts';
import { CheckpointError, decodeCheckpoint, encodeCheckpoint, type Checkpoint, type DecodedCheckpoint, type TensorMap } from '../checkpoint/index.ts';
import { DIGEST_PATTERN, type Announcement, type CheckpointRef, type CheckpointStore } from '../transport/index.ts';

/** Metadata key of the frozen base's digest (checkpoints of an imported network carry only what trains). */
export const BASE_DIGEST_KEY = 'base_digest';

/**
 * Refuses a checkpoint whose frozen base is not the one this role reads: its tensors are only the trainable
 * part, and on another base they would compute another policy.
 */
export function checkBaseDigest(extra: Record<string, string>, mine: string | undefined, source: string): void {
  const theirs = extra[BASE_DIGEST_KEY];
  if (theirs === mine) return;
  const what = (d: string | undefined) => (d ? `base sha256 ${d}` : 'no imported base (a built-in network)');
  throw new CheckpointError(
    `${source}: was trained on ${what(theirs)}, but this role's model.network files give ${what(mine)}: every role must read the same base files; refusing the run`,
    BASE_DIGEST_KEY,
  );
}

/**
 * The KL reference a checkpoint names: extra.ref_version and extra.ref_digest, written by the learner from its first
 * GRPO batch on (undefined before). Both are inside the checkpoint's bytes, so its digest binds them (and, in a
 * signed run, the learner's signature on that digest): the reference is fetched by this digest only. A version
 * without a well-formed digest is refused, never completed from what the store says of that version.
 */
export function klReferenceOf(extra: Record<string, string>, source: string): { version: number; digest: string } | undefined {
  const v = extra.ref_version;
  if (v === undefined) return undefined;
  if (!/^(0|[1-9][0-9]*)$/.test(v) || !Number.isSafeInteger(Number(v))) {
    throw new CheckpointError(`${source}: metadata extra.ref_version must be a non-negative integer, got ${JSON.stringify(v)}`, 'ref_version');
  }
  const digest = extra.ref_digest;
  if (digest === undefined || !DIGEST_PATTERN.test(digest)) {
    throw new CheckpointError(
      `${source}: extra.ref_version is ${v} but extra.ref_digest is ${digest === undefined ? 'missing' : `malformed (${JSON.stringify(digest.slice(0, 80))})`}: the KL reference is taken only from the digest the learner recorded in the checkpoint, never from the store`,
      'ref_digest',
    );
  }
  return { version: Number(v), digest };
}

export interface FetchedCheckpoint extends DecodedCheckpoint {
  announcement: Announcement;
  /** Bytes fetched. */
  size: number;
  /**
   * Says that no view of this checkpoint's parameters is used any more (views: true): its buffer may then hold a
   * later checkpoint, and the views read as empty from now on (CheckpointStore.get). Optional to call; twice throws.
   */
  release(): void;
}

/**
 * Fetches checkpoint `ann.version` and verifies it: the store checks size and sha256 against what put() recorded
 * and against `ann.digest`; decodeCheckpoint checks the file digest again, the safetensors layout, and that the
 * parameters are exactly `shapes`; the metadata must name this run and this version.
 */
export async function fetchCheckpoint(
  store: CheckpointStore,
  ann: Pick<Announcement, 'version' | 'digest'>,
  opts: {
    runId: string;
    shapes: ReadonlyMap<string, readonly number[]>;
    /** The digest of the frozen base this role reads (baseDigestOf); the checkpoint must name the same. */
    baseDigest?: string | undefined;
    /**
     * Parameters as views of the fetched bytes (decodeCheckpoint's `views`): for a role that never writes them
     * (rollout workers, evaluation); the learner trains in its tensors and takes copies.
     */
    views?: boolean;
    /**
     * The caller release()s every checkpoint it replaces (a follower holding one policy at a time): the store keeps
     * buffers ready for the next ones from this call on (CheckpointStore.get `reuse`).
     */
    reuse?: boolean;
  },
): Promise<FetchedCheckpoint> {
  const { bytes, announcement, release } = await store.get(ann.version, { expectDigest: ann.digest, reuse: opts.reuse === true });
  try {
    const source = `${store.bucket}/${announcement.name}`;
    // store.get hashed the bytes (Node's sha256) and found announcement.digest, which equals ann.digest: no second pass
    const ckpt = decodeCheckpoint(bytes, { expectedDigest: ann.digest.replace(/^sha256:/, ''), computedDigest: announcement.digest.replace(/^sha256:/, ''), expectedShapes: opts.shapes, source, views: opts.views === true });
    if (ckpt.meta.runId !== opts.runId) throw new CheckpointError(`${source}: belongs to run ${JSON.stringify(ckpt.meta.runId)}, not ${JSON.stringify(opts.runId)}`, 'run_id');
    if (ckpt.meta.version !== ann.version) throw new CheckpointError(`${source}: its metadata says version ${ckpt.meta.version}, announced as ${ann.version}`, 'version');
    checkBaseDigest(ckpt.meta.extra, opts.baseDigest, source);
    return { ...ckpt, announcement, size: bytes.length, release };
  } catch (e) {
    // refused: nobody holds a view of it
    release();
    throw e;
  }
}

/** Encodes (unless `encoded` is given) and publishes a checkpoint as version meta.version; returns its announcement. */
export async function publishCheckpoint(
  store: CheckpointStore,
  ckpt: Checkpoint,
  announceMeta: Record<string, unknown> = {},
  encoded: { bytes: Uint8Array; digest: string } = encodeCheckpoint(ckpt),
  opts: { beforeAnnounce?: Promise<unknown> } = {},
): Promise<Announcement> {
  const { bytes, digest } = encoded;
  return store.put(ckpt.meta.version, bytes, `sha256:${digest}`, {
    step: ckpt.meta.step,
    last_batch_id: ckpt.meta.lastBatchId,
    config_hash: ckpt.meta.configHash,
    ...ckpt.meta.extra,
    ...announceMeta,
  }, opts);
}

/** The wire form of an announcement. */
export function checkpointRef(ann: Announcement): CheckpointRef {
  return { version: ann.version, name: ann.name, digest: ann.digest, size: String(ann.size) };
}

/** Where a training run stands: what the learner records in every checkpoint it publishes. */
export interface TrainingPosition {
  runId: string;
  configHash: string;
  version: number;
  /** Applied updates since the run began. */
  step: number;
  /** The last batch seq handled (applied or skipped as non-finite). */
  lastBatchSeq: number;
  lastBatchId: string | null;
  /** The KL reference (set from the first GRPO batch on): its version and checkpoint digest. */
  refVersion?: number;
  refDigest?: string;
  /** The frozen base's digest when the policy is an imported network (its checkpoints carry only what trains). */
  baseDigest?: string | undefined;
  /**
   * The run's batch layout (lib/grpo/sampling.ts batchLayout: what its batch numbers name), recorded as
   * extra.batch_layout (JSON) so that an orchestrator without its run state can tell whether last_batch_seq numbers
   * batches as it does (review26c F3).
   */
  batchLayout?: BatchLayout;
}

/**
 * The checkpoint of a training position, as the learner publishes it (and the single-process loop rebuilds it):
 * the parameters that train and the metadata, never the optimizer state, which stays with the learner
 * (learner-state.ts) because followers do not need it.
 */
export function trainingCheckpoint(p: TrainingPosition, params: TensorMap): Checkpoint {
  const extra: Record<string, string> = { last_batch_seq: String(p.lastBatchSeq) };
  if (p.refVersion !== undefined) {
    extra.ref_version = String(p.refVersion);
    extra.ref_digest = p.refDigest!;
  }
  if (p.baseDigest !== undefined) extra[BASE_DIGEST_KEY] = p.baseDigest;
  if (p.batchLayout !== undefined) extra[BATCH_LAYOUT_META_KEY] = JSON.stringify(p.batchLayout);
  return { meta: { runId: p.runId, version: p.version, step: p.step, lastBatchId: p.lastBatchId, configHash: p.configHash, extra }, params };
}
