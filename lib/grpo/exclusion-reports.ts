// The learner's kept exclusion reports (round 32, trust32; docs/security.md, "A worker whose rows the learner excludes
// is named, counted and quarantined"). The orchestrator counts a batch's checked and excluded rollout results in its
// quarantine windows from the batch's TrainResult, and stores the windows with the batch's acknowledgement. Killed
// after the TrainResult arrived and before that acknowledgement was written, the batch is trained, and the restarted
// orchestrator acknowledges it without a TrainResult that reports it (a learner's Hello catch-up, or a 'duplicate'
// answer checked against the published checkpoint): before round 32 its counts were lost (review29 F5), so a forger
// whose forged batch landed in that gap escaped a count.
//
// So the orchestrator sends each GRPO batch's attribution with it (TrainBatch.rollout_workers: the rollout worker of
// each action's group), and the learner, when its checks exclude rows of a batch, keeps a report of the batch's checked
// results per worker in its run-state record (the `learner-skips` key, which only the learner writes: NATS grants; the
// orchestrator's names its own key `state` only since review32 F3), written before the batch's version is published,
// so whoever sees that version can read the report. An orchestrator acknowledging a batch without a TrainResult that
// reports it counts the report, once: only a batch after the stored acknowledgement, and not one whose TrainResult
// this process counted already, through the same count as a TrainResult (orchestrator/quarantine.ts `count`: its passed
// and excluded results in the windows, its excluded actions in rollout_rows_excluded_total). Only batches with an
// excluded result are reported (a write on the learner's path only when a row was forged or broken): the passed results
// of a batch without one, acknowledged without its TrainResult, are not counted, so a window then ages by those results
// less (as all of the batch's counts were lost before). A report pushed out by the bound leaves its seq behind (round
// 33), so an orchestrator that needed it says which batches' counts are lost (quarantine_reports_missing_total).
import { z } from 'zod';
import { WORKER_ID_PATTERN } from '../transport/messages.ts';

/** The run-state key of the learner's record (learner/index.ts: its non-finite skips, and these reports). */
export const LEARNER_RECORD_KEY = 'learner-skips';

/** The Capabilities label a learner that keeps these reports sets (value "1"): an older learner is told apart by it. */
export const EXCLUSION_REPORTS_LABEL = 'exclusion_reports';

/** The newest this many reports are kept (batches with an excluded result; only the unacknowledged ones are read). */
export const EXCLUSION_REPORTS_KEPT = 8;
/**
 * The seqs of at most this many reports pushed out by EXCLUSION_REPORTS_KEPT are kept (the newest; ~35 kB): more than
 * a catch-up can span (at most grpo.maxStaleness + 1 <= 1001 batches are unacknowledged at once), so an orchestrator
 * catching up can name every batch whose report it needed and the learner no longer holds.
 */
export const DROPPED_REPORTS_KEPT = 1024;
/** At most this many worker ids per report: those with an excluded result first, then those with the most results. */
export const REPORT_WORKERS_MAX = 64;
/**
 * At most this many results per worker id and report: over it, its oldest passed results in the batch are dropped first,
 * so every excluded one is kept (review32 F5); only a worker with more excluded results than this loses its oldest.
 */
export const REPORT_RESULTS_MAX = 256;

const positiveInt = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

/**
 * One batch's report: per rollout worker id, its results (groups) the learner's checks examined, in batch order, 'x'
 * for one with an excluded row, 'p' for one that passed; `actions` (round 33; absent from a round-32 learner's): per
 * worker with an excluded result, how many of its actions the checks excluded (rollout_rows_excluded_total counts
 * them, as it counts a TrainResult's excluded_actions). At most ~35 kB of JSON (64 ids of 128 characters, 256 results
 * each, twice for the ids), so the kept reports stay ~280 kB at most, with the dropped seqs ~310 kB, far under a NATS
 * message.
 */
export const exclusionReportSchema = z.object({
  seq: positiveInt,
  results: z.record(z.string().regex(WORKER_ID_PATTERN), z.string().regex(new RegExp(`^[xp]{1,${REPORT_RESULTS_MAX}}$`)))
    .refine((r) => Object.keys(r).length <= REPORT_WORKERS_MAX, `at most ${REPORT_WORKERS_MAX} worker ids`),
  actions: z.record(z.string().regex(WORKER_ID_PATTERN), positiveInt)
    .refine((r) => Object.keys(r).length <= REPORT_WORKERS_MAX, `at most ${REPORT_WORKERS_MAX} worker ids`).optional(),
});
export type ExclusionReport = z.infer<typeof exclusionReportSchema>;

/**
 * What is left of a report pushed out by EXCLUSION_REPORTS_KEPT: its seq (an older orchestrator reads it as a
 * malformed report and drops it).
 */
export const droppedReportSchema = z.object({ seq: positiveInt, dropped: z.literal(true) });
export type DroppedReport = z.infer<typeof droppedReportSchema>;

/** The record's `exclusion_reports` as the learner writes it: the seqs of dropped reports, then the kept reports, by seq. */
export type KeptReports = Array<DroppedReport | ExclusionReport>;

/**
 * The report of batch `seq` (undefined: nothing to report, or the batch carries no attribution). `sampleIds` and
 * `rolloutWorkers` per action (TrainBatch.sample_ids, rollout_workers; a group's actions share a sample id);
 * `excluded`: the actions with an excluded row; `unchecked`: those with a row no check examined (counted only when
 * excluded); `applied`: the step was applied (a batch skipped as non-finite reports its excluded results only, as the
 * orchestrator counts its TrainResult).
 */
export function buildExclusionReport(seq: number, sampleIds: readonly string[], rolloutWorkers: readonly string[], excluded: readonly number[], unchecked: readonly number[], applied: boolean): ExclusionReport | undefined {
  if (!excluded.length || rolloutWorkers.length !== sampleIds.length) return undefined;
  const hit = new Set<string>();
  for (const i of excluded) if (sampleIds[i] !== undefined) hit.add(sampleIds[i]!);
  const open = new Set<string>();
  for (const i of unchecked) if (sampleIds[i] !== undefined) open.add(sampleIds[i]!);
  /** Each group's rollout worker: that of its first action. */
  const groupWorker = new Map<string, string>();
  const results = new Map<string, string>();
  sampleIds.forEach((id, i) => {
    if (groupWorker.has(id)) return;
    const worker = rolloutWorkers[i]!;
    groupWorker.set(id, worker);
    if (!WORKER_ID_PATTERN.test(worker)) return;
    const mark = hit.has(id) ? 'x' : applied && !open.has(id) ? 'p' : '';
    if (mark) results.set(worker, (results.get(worker) ?? '') + mark);
  });
  const workers = [...results].map(([w, r]) => [w, boundResults(r)] as [string, string]);
  if (!workers.some(([, r]) => r.includes('x'))) return undefined;
  if (workers.length > REPORT_WORKERS_MAX) {
    workers.sort(([, a], [, b]) => Number(b.includes('x')) - Number(a.includes('x')) || b.length - a.length);
    workers.length = REPORT_WORKERS_MAX;
  }
  workers.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  // each excluded action once, by its group's worker (as the orchestrator attributes a TrainResult's excluded_actions)
  const actions = new Map<string, number>();
  for (const i of new Set(excluded)) {
    const worker = sampleIds[i] === undefined ? undefined : groupWorker.get(sampleIds[i]!);
    if (worker !== undefined && results.has(worker)) actions.set(worker, (actions.get(worker) ?? 0) + 1);
  }
  return { seq, results: Object.fromEntries(workers), actions: Object.fromEntries(workers.flatMap(([w, r]) => (r.includes('x') ? [[w, actions.get(w)!]] : []))) };
}

/**
 * One worker's results (`[xp]*`, in batch order) cut to REPORT_RESULTS_MAX: its oldest passed results dropped first,
 * then (more excluded results than that) its oldest excluded ones.
 */
export function boundResults(marks: string): string {
  let drop = marks.length - REPORT_RESULTS_MAX;
  if (drop <= 0) return marks;
  let out = '';
  for (const m of marks) {
    if (drop > 0 && m === 'p') drop--;
    else out += m;
  }
  return out.slice(-REPORT_RESULTS_MAX);
}

/**
 * The reports in `kept` (the record's field as read: anything; a malformed entry is dropped) that are well formed, in
 * seq order, one per seq.
 */
export function readExclusionReports(kept: unknown): ExclusionReport[] {
  if (!Array.isArray(kept)) return [];
  const bySeq = new Map<number, ExclusionReport>();
  for (const e of kept) {
    const r = exclusionReportSchema.safeParse(e);
    if (r.success) bySeq.set(r.data.seq, r.data);
  }
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

/** The seqs of the reports `kept` records as dropped (not one it also holds), ascending. */
export function readDroppedReports(kept: unknown): number[] {
  if (!Array.isArray(kept)) return [];
  const held = new Set(readExclusionReports(kept).map((r) => r.seq));
  const seqs = new Set<number>();
  for (const e of kept) {
    const r = droppedReportSchema.safeParse(e);
    if (r.success && !held.has(r.data.seq)) seqs.add(r.data.seq);
  }
  return [...seqs].sort((a, b) => a - b);
}

/**
 * What to keep after `report`: it replaces any report (or dropped seq) of its seq or after (a learner resumed from an
 * older version trains those batches again); only the newest EXCLUSION_REPORTS_KEPT reports stay, the older ones
 * leave their seq (the newest DROPPED_REPORTS_KEPT seqs).
 */
export function keepExclusionReport(kept: unknown, report: ExclusionReport): KeptReports {
  const reports = [...readExclusionReports(kept).filter((r) => r.seq < report.seq), report];
  const pushedOut = reports.splice(0, Math.max(0, reports.length - EXCLUSION_REPORTS_KEPT)).map((r) => r.seq);
  const dropped = [...readDroppedReports(kept).filter((seq) => seq < report.seq), ...pushedOut].slice(-DROPPED_REPORTS_KEPT);
  return [...dropped.map((seq): DroppedReport => ({ seq, dropped: true })), ...reports];
}

/**
 * What `kept` holds (reports and dropped seqs) of batches up to `seq`: a learner resuming after batch `seq` drops the
 * later ones (learner/index.ts, review32 F6), which its checkpoint does not hold.
 */
export function reportsUpTo(kept: unknown, seq: number): KeptReports {
  return [
    ...readDroppedReports(kept).filter((s) => s <= seq).map((s): DroppedReport => ({ seq: s, dropped: true })),
    ...readExclusionReports(kept).filter((r) => r.seq <= seq),
  ];
}
