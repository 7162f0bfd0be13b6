// The orchestrator's worker-id record (round 33): the quarantined rollout worker ids and the worker ids bound to role
// tokens, as its run state holds them (RunState.quarantined, RunState.boundIds). It goes with every TrainBatch
// (field 21, worker_ids) and the learner records the newest batch's in each checkpoint announcement's meta
// (worker_ids, JSON; not in the checkpoint's bytes), so an orchestrator whose run state was lost with the NATS store
// while it was down takes them back from the checkpoint the learner put back (docs/reliability.md). Bounded on both
// sides; read back, it is a claim like extra.batch_layout: validated here, and content that is not a record is refused
// by the orchestrator (counted, logged, not trusted).
import { z } from 'zod';
import { WORKER_ID_PATTERN } from './messages.ts';
import type { WorkerIdRecord, WorkerIdRecord__Output } from './proto.ts';

/**
 * The checkpoint announcement meta key the learner records the newest TrainBatch's record under (never in the
 * checkpoint's bytes).
 */
export const WORKER_IDS_META_KEY = 'worker_ids';

/**
 * At most this many quarantined ids (the first, in the run state's order) and this many bindings (the most recently
 * claimed) go with a batch and into a checkpoint: with ids of at most 128 characters, under ~80 kB of JSON in the
 * checkpoint's metadata and its announcement (a NATS message, 1 MiB by default), and in every TrainBatch. The run state
 * keeps more (QUARANTINE_STORED_MAX, BOUND_IDS_MAX); what is beyond this is not recoverable from a checkpoint.
 */
export const WORKER_ID_RECORD_QUARANTINED_MAX = 256;
export const WORKER_ID_RECORD_BOUND_MAX = 256;

/** A binding's key: `<role>/<worker id>` (orchestrator/id-bindings.ts bindingKey). */
export const BOUND_KEY_PATTERN = new RegExp(`^(rollout|reward|learner)/${WORKER_ID_PATTERN.source.replace(/^\^/, '').replace(/\$$/, '')}$`);
/** A binding's credential: tokenCredentialId (16 hex digits of the token's SHA-256), never the token. */
export const BOUND_CREDENTIAL_PATTERN = /^token:[0-9a-f]{16}$/;

/** The record in the run state's form. */
export interface WorkerIds {
  /** Quarantined rollout worker ids. */
  quarantined: string[];
  /** `<role>/<worker id>` -> credential id, least recently claimed first. */
  boundIds: Record<string, string>;
}

/**
 * `ids` cut to the bounds, entries that do not match the patterns left out: `cut` counts what was left out (for a log
 * line), zero when nothing was.
 */
export function boundWorkerIds(ids: WorkerIds): { ids: WorkerIds; cut: number } {
  const valid = ids.quarantined.filter((id) => WORKER_ID_PATTERN.test(id));
  const quarantined = valid.slice(0, WORKER_ID_RECORD_QUARANTINED_MAX);
  const pairs = Object.entries(ids.boundIds).filter(([k, c]) => BOUND_KEY_PATTERN.test(k) && BOUND_CREDENTIAL_PATTERN.test(c));
  const bound = pairs.slice(Math.max(0, pairs.length - WORKER_ID_RECORD_BOUND_MAX));
  const cut = ids.quarantined.length - quarantined.length + Object.keys(ids.boundIds).length - bound.length;
  return { ids: { quarantined, boundIds: Object.fromEntries(bound) }, cut };
}

/** The wire form (TrainBatch.worker_ids) of `ids`, bounded (boundWorkerIds). */
export function workerIdRecord(ids: WorkerIds): WorkerIdRecord {
  const b = boundWorkerIds(ids).ids;
  return { quarantined: b.quarantined, bound: Object.entries(b.boundIds).map(([key, credential]) => ({ key, credential })) };
}

/** A received TrainBatch.worker_ids in the run state's form (undefined: absent, an older orchestrator); not bounded. */
export function workerIdsFromWire(rec: WorkerIdRecord__Output | null | undefined): WorkerIds | undefined {
  if (!rec) return undefined;
  return { quarantined: [...rec.quarantined], boundIds: Object.fromEntries(rec.bound.map((b) => [b.key, b.credential])) };
}

/** The announcement meta worker_ids: JSON of the quarantined ids and the bindings ([key, credential]), in order. */
export function workerIdsText(ids: WorkerIds): string {
  return JSON.stringify({ quarantined: ids.quarantined, bound: Object.entries(ids.boundIds) });
}

const textSchema = z.object({
  quarantined: z.array(z.string().regex(WORKER_ID_PATTERN)).max(WORKER_ID_RECORD_QUARANTINED_MAX),
  bound: z.array(z.tuple([z.string().regex(BOUND_KEY_PATTERN), z.string().regex(BOUND_CREDENTIAL_PATTERN)])).max(WORKER_ID_RECORD_BOUND_MAX),
}).strict();

/**
 * A record read back (a checkpoint announcement's worker_ids, `what` naming it); an Error naming `what` and the
 * problem when it is not one: not a string, not JSON, a worker id or key off its pattern, over the bounds, a key twice.
 */
export function parseWorkerIds(text: unknown, what: string): WorkerIds | Error {
  if (typeof text !== 'string') return new Error(`${what}: not a string`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return new Error(`${what}: not JSON (${(e as Error).message})`);
  }
  const r = textSchema.safeParse(json);
  if (!r.success) return new Error(`${what}: not a worker-id record: ${r.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  const keys = new Set(r.data.bound.map(([k]) => k));
  if (keys.size !== r.data.bound.length) return new Error(`${what}: not a worker-id record: a binding key appears twice`);
  return { quarantined: r.data.quarantined, boundIds: Object.fromEntries(r.data.bound) };
}
