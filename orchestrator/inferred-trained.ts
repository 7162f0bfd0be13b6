// What happened to batches acknowledged without a TrainResult at hand (a learner's Hello catch-up, a restarted
// learner's 'duplicate' answer, an acknowledgement stored but not logged before a kill), read from what the learner
// recorded, never guessed. The learner's version advances on an applied batch and on an empty one, never on a batch
// skipped as non-finite (learner/index.ts); every version's checkpoint records the batch that produced it
// (extra.last_batch_seq) and the updates applied so far (step). So between two consecutive versions' records, the
// batches after the older one's and before the newer one's were skipped as non-finite, and a version whose step did
// not advance was an empty batch. The learner's own `learner-skips` record adds nothing here: it names only skips
// after the newest checkpoint, which the record of the version an acknowledgement names already shows.
// Where a record is gone (pruned, or lost with the NATS store) and the count of versions does not settle it, the
// outcome is unknown: applied and version are null, and the evidence says why.

/** What checkpoint `version` records (its stored meta). */
export interface CheckpointRecord {
  version: number;
  /** extra.last_batch_seq: the batch that produced this version (0 for the initial version). */
  lastBatchSeq: number;
  /** Applied updates since the run began. */
  step: number;
}

export type InferredKind = 'applied' | 'non_finite' | 'empty' | 'unknown';

export interface InferredOutcome {
  seq: number;
  kind: InferredKind;
  /** null: not known (kind 'unknown'). */
  applied: boolean | null;
  /** The learner's version after the batch; null: not known. */
  version: number | null;
  /** Which records say so, or why it is not known. */
  evidence: string;
}

export interface InferOptions {
  first: number;
  last: number;
  /** The learner's version after batch `last` (what the acknowledgement names). */
  lastVersion: number;
  /** The version after batch first - 1, when known (the stored run state's): used only where records are missing. */
  versionBefore?: number;
  /** Batches 1..sftSteps are SFT batches, which are never empty. */
  sftSteps: number;
  /** Checkpoint `version`'s record; null when the store no longer holds it. A throw counts as a record not read. */
  record: (version: number) => Promise<CheckpointRecord | null>;
}

/** The outcome of each batch first..last, in seq order. */
export async function inferOutcomes(o: InferOptions): Promise<InferredOutcome[]> {
  const out: InferredOutcome[] = [];
  let upper = o.last; // the batches not settled yet are first..upper, and the version after `upper` is v
  let v = o.lastVersion;
  let { rec, why: missing } = await recordOf(o, v);
  while (upper >= o.first && rec) {
    const s = rec.lastBatchSeq;
    if (s > upper) {
      missing = `checkpoint v${v} records batch ${s}, after batch ${upper}`;
      break;
    }
    for (; upper > s && upper >= o.first; upper--) {
      out.push({ seq: upper, kind: 'non_finite', applied: false, version: v, evidence: `checkpoint v${v} records batch ${s}` });
    }
    if (upper < o.first) break;
    // batch s produced version v: applied, unless the step stayed where the version before left it (empty)
    const { rec: prev, why } = v > 0 ? await recordOf(o, v - 1) : { rec: null, why: 'no version before v0' };
    const usable = prev && prev.lastBatchSeq < s ? prev : null;
    const steps = usable ? rec.step - usable.step : undefined;
    if (steps === 1) out.push({ seq: s, kind: 'applied', applied: true, version: v, evidence: `checkpoints v${v - 1}..v${v} record batches ${usable!.lastBatchSeq}..${s}, step ${usable!.step}..${rec.step}` });
    else if (steps === 0) out.push({ seq: s, kind: 'empty', applied: false, version: v, evidence: `checkpoints v${v - 1}..v${v} record batches ${usable!.lastBatchSeq}..${s} at step ${rec.step}` });
    else if (s <= o.sftSteps) out.push({ seq: s, kind: 'applied', applied: true, version: v, evidence: `checkpoint v${v} records batch ${s}, an SFT batch (never empty)` });
    else out.push({ seq: s, kind: 'unknown', applied: null, version: v, evidence: `checkpoint v${v} records batch ${s}; whether it was trained or empty is not recorded (${usable ? `step ${usable.step}..${rec.step}` : why})` });
    upper = s - 1;
    v -= 1;
    rec = usable;
    if (!rec) missing = prev ? `checkpoint v${v} records batch ${prev.lastBatchSeq}, not before batch ${s}` : why;
  }
  if (upper >= o.first) out.push(...byCount(o, upper, v, missing));
  return out.sort((a, b) => a.seq - b.seq);
}

/**
 * Batches first..upper, the version after `upper` being v, with no record to read: settled only when the stored
 * version before them says that none of them, or every one, moved the version.
 */
function byCount(o: InferOptions, upper: number, v: number, missing: string): InferredOutcome[] {
  const count = upper - o.first + 1;
  const advances = o.versionBefore === undefined ? undefined : v - o.versionBefore;
  const range = `batches ${o.first}..${upper}`;
  return Array.from({ length: count }, (_, i): InferredOutcome => {
    const seq = o.first + i;
    if (advances === 0) return { seq, kind: 'non_finite', applied: false, version: v, evidence: `${missing}; the version stayed v${v} over ${range}` };
    if (advances === count) {
      const version = o.versionBefore! + i + 1;
      const evidence = `${missing}; the version went from v${o.versionBefore} to v${v} over ${range}, one per batch`;
      return seq <= o.sftSteps ? { seq, kind: 'applied', applied: true, version, evidence } : { seq, kind: 'unknown', applied: null, version, evidence: `${evidence}; trained or empty is not recorded` };
    }
    const why = advances === undefined ? 'the version before them is not known' : `${advances} version(s) over ${count} batches`;
    return { seq, kind: 'unknown', applied: null, version: null, evidence: `${missing}; ${why}` };
  });
}

/** The record of `version` (refused unless it names that version), or why there is none. */
async function recordOf(o: InferOptions, version: number): Promise<{ rec: CheckpointRecord | null; why: string }> {
  let r: CheckpointRecord | null;
  try {
    r = await o.record(version);
  } catch (e) {
    return { rec: null, why: `checkpoint v${version} could not be read (${(e as Error).message})` };
  }
  if (!r) return { rec: null, why: `checkpoint v${version} is not in the store` };
  return r.version === version ? { rec: r, why: '' } : { rec: null, why: `the record read for checkpoint v${version} names v${r.version}` };
}

/** A checkpoint's record from the meta its announcement carries (CheckpointStore.storedMeta); null if malformed. */
export function recordFromMeta(version: number, meta: Record<string, unknown> | null): CheckpointRecord | null {
  if (!meta) return null;
  const seq = meta['last_batch_seq'];
  const step = meta['step'];
  const lastBatchSeq = typeof seq === 'string' && /^(0|[1-9][0-9]*)$/.test(seq) ? Number(seq) : NaN;
  if (!Number.isSafeInteger(lastBatchSeq) || typeof step !== 'number' || !Number.isSafeInteger(step) || step < 0) return null;
  return { version, lastBatchSeq, step };
}
