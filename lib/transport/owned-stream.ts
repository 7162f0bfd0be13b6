// The settings of a stream its owner (the learner: checkpoints, announcements, its optimizer state) relies on, checked
// in full when it opens the stream (round 23, review23d finding 3). A stream that already exists may have been made by
// someone else with create rights (before round 23 the orchestrator had them) with settings that quietly defeat the
// store: `max_age` (checkpoints and announcements expire), `sources`/`mirror` (another stream's messages copied in),
// `republish` or `subject_transform` (what is stored re-published elsewhere), extra subjects (another stream's
// messages captured), memory storage (lost at a restart), a stream-wide `max_msgs` (genuine announcements evicted).
// The owner refuses such a stream, naming it and each setting (round 25: it no longer updates one, see checkOwnedStream).
import { DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager } from 'nats';

/** What an owned stream must have; every setting named here is compared, and the ones in FORBIDDEN must be absent. */
export interface OwnedStreamSettings {
  subjects: string[];
  storage: StorageType;
  discard: DiscardPolicy;
  max_msgs_per_subject: number;
  allow_direct: boolean;
  /** Object buckets: info records are replaced by a rollup (nats.js object stores set it). */
  allow_rollup_hdrs?: boolean;
}

/** Settings every owned stream has whatever it holds: limits retention, no expiry, no stream-wide limits. */
const COMMON = { retention: RetentionPolicy.Limits, max_age: 0, max_bytes: -1, max_msgs: -1, max_msg_size: -1, no_ack: false, sealed: false, deny_purge: false, mirror_direct: false };
/** Settings an owned stream must not have at all: each copies messages in, or sends stored ones elsewhere. */
const FORBIDDEN = ['mirror', 'sources', 'republish', 'subject_transform'] as const;

type Config = Record<string, unknown>;

const isAbsent = (v: unknown) => v === undefined || v === null || (Array.isArray(v) && v.length === 0);
const same = (a: unknown, b: unknown) => JSON.stringify(Array.isArray(a) ? [...a].sort() : a) === JSON.stringify(Array.isArray(b) ? [...b].sort() : b);

/** The settings of `config` that differ from `expected`, as "name: has X, expected Y" (empty when it conforms). */
export function streamMismatches(config: Config, expected: OwnedStreamSettings): string[] {
  const want: Config = { ...COMMON, ...expected };
  // an unset boolean is off (allow_direct is absent from older streams' configs)
  const got = (k: string) => config[k] ?? (typeof want[k] === 'boolean' ? false : undefined);
  const wrong = Object.keys(want).filter((k) => !same(got(k), want[k])).map((k) => `${k}: has ${JSON.stringify(got(k))}, expected ${JSON.stringify(want[k])}`);
  for (const k of FORBIDDEN) if (!isAbsent(config[k])) wrong.push(`${k}: has ${JSON.stringify(config[k])}, expected none`);
  return wrong;
}

/**
 * Checks the existing stream `name` against `expected` (its owner's call, before using it): nothing when it conforms
 * or does not exist (its creator makes it); otherwise throws, naming the stream and each setting that differs, and
 * changes nothing. Round 25: the owner no longer corrects a stream by updating it, so no role's grant includes
 * `$JS.API.STREAM.UPDATE` (a stolen learner credential could otherwise add `_R_.>` to one of its streams' subjects
 * and capture JetStream answers: docs/security.md). A stream refused here is corrected by an operator (e.g.
 * `nats stream edit` as a user of the STREAMS account, which none of the roles is) or left for a new run.
 */
export async function checkOwnedStream(jsm: JetStreamManager, name: string, expected: OwnedStreamSettings): Promise<void> {
  const info = await jsm.streams.info(name).catch((e: unknown) => { if (/not found/i.test((e as Error).message)) return null; throw e; });
  if (!info) return;
  const wrong = streamMismatches(info.config as unknown as Config, expected);
  if (wrong.length > 0) {
    throw new Error(`stream ${name} has settings its owner does not use (${wrong.join('; ')}): it is not used and not changed; `
      + 'an operator corrects it (nats stream edit, in the STREAMS account) or the run starts under a new run.id (docs/security.md, "The learner owns the checkpoint streams")');
  }
}

/** An object bucket's stream (nats.js object store `bucket`), as nats.js makes it and the stores read it (direct gets). */
export function objectBucketSettings(bucket: string, storage: StorageType): OwnedStreamSettings {
  return { subjects: [`$O.${bucket}.C.>`, `$O.${bucket}.M.>`], storage, discard: DiscardPolicy.New, max_msgs_per_subject: -1, allow_direct: true, allow_rollup_hdrs: true };
}
