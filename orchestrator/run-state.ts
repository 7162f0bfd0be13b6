// What the orchestrator records about a run: the state that survives a restart, the progress line per
// acknowledged batch, and the audit events (written as JSON lines by --events).
import { forEachEvent } from '../lib/log/event-log.ts';

/** What survives a restart (stored in the JetStream key-value bucket). */
export interface RunState {
  /** batch_seq of the last TrainBatch the learner acknowledged (0: none). */
  ackedSeq: number;
  /** Learner policy version after that batch. */
  learnerVersion: number;
  /**
   * Rollout worker ids quarantined so far (quarantine.ts), sorted; absent: none (or a state written before round 26).
   * Written with the acknowledgement of the batch whose TrainResult quarantined the id, so a restarted orchestrator
   * refuses them too.
   */
  quarantined?: string[];
  /**
   * The quarantine windows (quarantine.ts StoredWindows: per rollout worker id not quarantined with an excluded result
   * in its grpo.quarantineWindow, the ages of those results), as the acknowledged batch's TrainResult left them;
   * absent: none (or a state written before round 29, whose restart counted from zero). Bounded: at most
   * QUARANTINE_WINDOWS_STORED_MAX ids, QUARANTINE_WINDOW_HITS_STORED_MAX ages each.
   */
  quarantineWindows?: Record<string, number[]>;
  /**
   * Worker ids bound to the role token granting any id that first used them (id-bindings.ts): `<role>/<worker id>` ->
   * the token's credential id (tokenCredentialId: 16 hex digits of its SHA-256, not the token). Absent: none (or a
   * state written before round 29). At most BOUND_IDS_MAX.
   */
  boundIds?: Record<string, string>;
  /**
   * The checkpoint version whose record (announcement meta worker_ids) a start took back into this state when it found the run state
   * lost (orchestrator/state-recovery.ts, round 33), while no batch is acknowledged: a later start finds the loss
   * already handled and takes nothing back over the state (an id lifted meanwhile stays lifted). Dropped with the first
   * acknowledgement, after which the state is the run's own word anyway.
   */
  recoveredFrom?: number;
}

export interface Progress {
  /** The acknowledged batch's phase; 'done' for the run's last batch. */
  phase: 'sft' | 'grpo' | 'done';
  seq: number;
  totalSeq: number;
  version: number;
  loss: number;
  kl?: number;
  clipFraction?: number;
  /** Flow family, GRPO: clip fraction and KL per trained step index of the sampler (docs/flow.md). */
  flowSteps?: Array<{ step: number; clipFraction: number; kl: number }>;
  reward?: number;
  components?: Record<string, number>;
  samplesPerSecond: number;
}

/** What happened to the run's work, for audits and tests. */
export type RunEvent =
  | { type: 'rollout'; sample: string; worker: string; version: number; attempt: number; compute_ms: number }
  | { type: 'scored'; sample: string; worker: string; reward: number; compute_ms: number }
  /**
   * An acknowledged batch. applied and version are null when not known: a batch acknowledged without a TrainResult
   * whose outcome the learner's checkpoints no longer record (its reason starts with 'unknown'; inferred-trained.ts).
   */
  | { type: 'trained'; seq: number; kind: 'sft' | 'grpo'; applied: boolean | null; reason?: string; version: number | null; samples: string[]; compute_ms: number }
  | { type: 'dropped'; sample: string; reason: string };

/** The cursor in a GRPO group's sample id (lib/grpo/sampling.ts groupSampleId: `c<cursor>:<id>`), or undefined. */
export function cursorOfSample(sampleId: string): number | undefined {
  const m = /^c(\d+):/.exec(sampleId);
  return m ? Number(m[1]) : undefined;
}

/**
 * The highest batch seq with a 'trained' event in the event log `file` (0: none, or no file) and, when that event
 * records the batch applied, the version it produced (from the learner's TrainResult, or read from its checkpoints).
 * With `firstCursorAfter` (the first GRPO cursor of the batches after a seq), also the samples the log records
 * dropped in batches after that one: the inferred 'trained' events of those batches must not list them (review26a F3).
 */
export function lastLoggedTrained(file: string, firstCursorAfter?: (seq: number) => number): { seq: number; appliedVersion?: number; dropped: string[] } {
  let last: { seq: number; appliedVersion?: number } = { seq: 0 };
  let dropped: Array<{ sample: string; cursor: number }> = [];
  let pruneAt = 1024;
  // one block at a time: a long run's log is never held whole (lib/log/event-log.ts); the drops of batches the log
  // already records trained are let go as it is read
  forEachEvent(file, (e) => {
    if (e.type === 'trained' && typeof e.seq === 'number' && e.seq > last.seq) {
      last = e.applied === true && typeof e.version === 'number' && Number.isSafeInteger(e.version) ? { seq: e.seq, appliedVersion: e.version } : { seq: e.seq };
    } else if (firstCursorAfter && e.type === 'dropped' && typeof e.sample === 'string') {
      const cursor = cursorOfSample(e.sample);
      if (cursor === undefined) return;
      dropped.push({ sample: e.sample, cursor });
      if (dropped.length >= pruneAt) {
        const from = firstCursorAfter(last.seq);
        dropped = dropped.filter((d) => d.cursor >= from);
        pruneAt = Math.max(1024, 2 * dropped.length);
      }
    }
  });
  const from = firstCursorAfter ? firstCursorAfter(last.seq) : Infinity;
  return { ...last, dropped: dropped.filter((d) => d.cursor >= from).map((d) => d.sample) };
}
