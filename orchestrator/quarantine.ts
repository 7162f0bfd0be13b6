// Rollout workers whose log-densities the learner refused (docs/security.md, "Forged log-densities"). The learner's
// same-version check excludes a row whose logp_old disagrees with its own (lib/grpo/logp-check.ts) and says which
// actions in its TrainResult (excluded_actions); only the orchestrator knows which worker produced each. Every such
// action is logged naming the worker and counted per worker; a worker id with grpo.quarantineAfter excluded results
// (groups) among its last grpo.quarantineWindow results the check examined is quarantined for the rest of the run: its
// session is closed and a reconnect with that id refused, also by a restarted orchestrator (the run state records the
// id), so it cannot keep wasting each batch's rows (or, at maxStaleness > 0, steer steps within the dual clip). The
// window keeps an honest worker's rare rounding outliers from adding up over a long run. Since round 29 the windows go
// with each acknowledgement too (RunState.quarantineWindows: the windows as of that batch's TrainResult), so a
// restarted orchestrator goes on counting where the acknowledged batches left off instead of from zero. Since round 32
// a batch acknowledged without a TrainResult that reports it (killed between the TrainResult and its acknowledgement)
// is counted from the learner's kept report of it (recordReported; lib/grpo/exclusion-reports.ts), since round 33 through
// the same `count` as a TrainResult (its excluded actions in rollout_rows_excluded_total too).
import type { Metrics } from '../lib/metrics/index.ts';
import { quoteForLog } from '../lib/log/quote.ts';
import type { ExclusionReport } from '../lib/grpo/exclusion-reports.ts';

/** At most this many worker ids get their own rollout_rows_excluded_total series; later ones count as "other". */
export const QUARANTINE_LABELLED_WORKERS = 64;

/**
 * At most this many quarantined ids are stored in the run state (the first quarantined; ~130 kB of JSON at most, far
 * under a NATS message): a credential cycling through worker ids cannot grow the state until its write fails. Ids
 * beyond it are refused by this process only, and logged as such.
 */
export const QUARANTINE_STORED_MAX = 1000;

/**
 * At most this many worker ids' windows are stored in the run state (those nearest quarantine: the most excluded
 * results in the window, then the newest). With the per-id bound below and an id of at most 128 characters, at most
 * ~150 kB of JSON beside the quarantined ids' ~130 kB, far under a NATS message (1 MiB by default); a credential
 * cycling through worker ids cannot grow the state until its write fails. A window not stored starts from zero at a
 * restart (as all did before round 29).
 */
export const QUARANTINE_WINDOWS_STORED_MAX = 256;
/**
 * At most this many of a worker id's excluded results in its window are stored (its newest: they stay longest in the
 * window). Only a grpo.quarantineAfter above it can hold more (the default is 3); such a count is stored cut to it.
 */
export const QUARANTINE_WINDOW_HITS_STORED_MAX = 64;

/**
 * The windows as stored (RunState.quarantineWindows): per worker id with an excluded result in its window, the age of
 * each, ascending: how many of the worker's checked results came after it (0: its newest checked result was excluded).
 * Ages are in the worker's own count of checked results, so a restart with another grpo.quarantineWindow keeps what
 * fits in the new window.
 */
export type StoredWindows = Record<string, number[]>;

/** An excluded action, attributed: the worker whose accepted rollout result carried it. */
export interface ExcludedAction {
  worker: string;
  sampleId: string;
  groupIndex: number;
}

/** One rollout result (group) of a batch the learner's same-version check examined, attributed. */
export interface CheckedResult {
  worker: string;
  sampleId: string;
  /** Some of its rows were excluded. */
  excluded: boolean;
}

/** A worker's window: its checked results counted so far (while it has an exclusion in the window) and which were excluded. */
interface Window {
  seen: number;
  /** Ordinals (1-based, in `seen`'s count) of its excluded results still in the window, ascending. */
  hits: number[];
}

export class Quarantine {
  /**
   * Per worker id with an excluded result in its window: its window. A worker with none has no entry (its count
   * restarts at its next exclusion, which changes nothing: only positions within the window matter).
   */
  private readonly windows = new Map<string, Window>();
  private readonly quarantined = new Set<string>();
  private readonly labelled = new Set<string>();
  /** Ids quarantined by an earlier orchestrator process of the run (RunState.quarantined). */
  private readonly restored = new Set<string>();
  /**
   * The windows as stored after each batch `record` counted, not yet acknowledged, in batch order: a batch counted
   * and not acknowledged (its TrainResult refused for an unbelievable version; a batch the acknowledgement of an
   * earlier one does not cover) is stored with its own acknowledgement, the windows as of that batch (the coordinator
   * counts each TrainResult in its acknowledgement chain, so in the order acknowledgements apply: review32 F1). If the process is
   * killed before that is written, a restarted orchestrator counts them from the learner's kept report of the batch
   * (recordReported, round 32; before, they were lost: review29 F5).
   */
  private readonly pending: Array<{ seq: number; windows: StoredWindows | undefined }> = [];
  /** The windows as of the acknowledged batch (restored at start). */
  private acked: StoredWindows | undefined;

  /**
   * `after`: grpo.quarantineAfter (0: never); `window`: grpo.quarantineWindow (0: the whole run). `close(workerId,
   * reason)` ends the worker's open sessions. `restored`: the ids the run state records as quarantined (a restarted
   * orchestrator keeps refusing them).
   */
  constructor(private readonly o: { after: number; window: number; metrics: Metrics; log: (line: string) => void; close: (workerId: string, reason: string) => void; restored?: readonly string[]; restoredWindows?: Readonly<StoredWindows> }) {
    if (o.window > 0 && o.after > o.window) throw new Error(`grpo.quarantineAfter ${o.after} must be at most grpo.quarantineWindow ${o.window} (or the window 0, the whole run)`);
    for (const id of o.restored ?? []) {
      this.quarantined.add(id);
      this.restored.add(id);
    }
    if (o.after > 0) {
      // a window's ages become positions again: its `seen` one past the oldest; what no longer fits the window (a
      // restart with a smaller grpo.quarantineWindow) is let go, and a quarantined id's window is not kept
      for (const [id, ages] of Object.entries(o.restoredWindows ?? {})) {
        if (this.quarantined.has(id)) continue;
        const kept = [...new Set(ages)].filter((a) => Number.isSafeInteger(a) && a >= 0 && (o.window === 0 || a < o.window)).sort((x, y) => y - x);
        if (!kept.length) continue;
        const seen = kept[0]! + 1;
        this.windows.set(id, { seen, hits: kept.map((a) => seen - a) });
      }
      if (this.windows.size) o.log(`the quarantine windows of ${this.windows.size} rollout worker id(s) go on from the run state: ${[...this.windows].slice(0, 16).map(([id, w]) => `${JSON.stringify(id)} ${w.hits.length}`).join(', ')}${this.windows.size > 16 ? ', ...' : ''} excluded result(s) in the window`);
      this.acked = this.stored();
    }
  }

  /**
   * The windows to store with the acknowledgement of batch `seq`: as `record` left them after the newest batch up to
   * `seq` it counted (undefined: none to store).
   */
  windowsAt(seq: number): StoredWindows | undefined {
    for (let i = this.pending.length - 1; i >= 0; i--) if (this.pending[i]!.seq <= seq) return this.pending[i]!.windows;
    return this.acked;
  }

  /** Batch `seq` is acknowledged (its windows stored): what `windowsAt` returns for it becomes the acknowledged windows. */
  acknowledged(seq: number): void {
    this.acked = this.windowsAt(seq);
    while (this.pending.length && this.pending[0]!.seq <= seq) this.pending.shift();
  }

  /** The windows as of the acknowledged batch: what the run state holds (or is to hold, re-created from memory). */
  ackedWindows(): StoredWindows | undefined {
    return this.acked;
  }

  /**
   * The windows now, as stored: per worker id not quarantined, its excluded results' ages (at most
   * QUARANTINE_WINDOW_HITS_STORED_MAX, the newest); at most QUARANTINE_WINDOWS_STORED_MAX ids, those with the most
   * excluded results in the window, then the newest; keys sorted. Undefined when there is none.
   */
  private stored(): StoredWindows | undefined {
    const all: Array<[string, number[]]> = [];
    for (const [id, w] of this.windows) {
      if (this.quarantined.has(id) || !w.hits.length) continue;
      all.push([id, w.hits.slice(-QUARANTINE_WINDOW_HITS_STORED_MAX).map((h) => w.seen - h).reverse()]);
    }
    if (!all.length) return undefined;
    if (all.length > QUARANTINE_WINDOWS_STORED_MAX) {
      all.sort(([ia, a], [ib, b]) => b.length - a.length || a[0]! - b[0]! || (ia < ib ? -1 : 1));
      all.length = QUARANTINE_WINDOWS_STORED_MAX;
    }
    all.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return Object.fromEntries(all);
  }

  /**
   * Quarantines `ids` as an earlier process of the run did (taken back from a checkpoint announcement's worker_ids when the run
   * state was lost: orchestrator/main.ts, round 33): refused from now on, an open session of one closed. Their windows
   * are not known (they start from zero, should one be lifted). Returns the ids that were not quarantined yet.
   */
  restore(ids: readonly string[]): string[] {
    const added = ids.filter((id) => !this.quarantined.has(id));
    for (const id of added) {
      this.quarantined.add(id);
      this.restored.add(id);
      this.windows.delete(id);
      this.o.close(id, this.reason(id));
    }
    return added;
  }

  /** The quarantined worker ids the run state records, sorted: the first QUARANTINE_STORED_MAX quarantined. */
  ids(): string[] {
    return [...this.quarantined].slice(0, QUARANTINE_STORED_MAX).sort();
  }

  /**
   * The quarantined worker ids in the order they were quarantined (restored ones first, in the run state's order),
   * for TrainBatch.worker_ids: when its cap (WORKER_ID_RECORD_QUARANTINED_MAX) cuts, the oldest stay, not the
   * alphabetically first (review33 F5).
   */
  oldestFirst(): string[] {
    return [...this.quarantined];
  }

  isQuarantined(workerId: string): boolean {
    return this.quarantined.has(workerId);
  }

  /** Why a worker connecting as `workerId` is refused (undefined: it is not). */
  refusal(workerId: string): string | undefined {
    return this.quarantined.has(workerId) ? this.reason(workerId) : undefined;
  }

  /** How many of its results the count of `workerId` covers, in words. */
  private span(): string {
    return this.o.window > 0 ? `its last ${this.o.window} checked rollout results` : 'its rollout results';
  }

  private reason(workerId: string): string {
    if (this.restored.has(workerId)) return `worker ${workerId} is quarantined for the rest of the run: an earlier orchestrator process of the run quarantined it (the learner excluded rows of its rollout results: logp_old disagreeing with the learner's own recomputation at the row's behaviour version beyond grpo.logpTolerance), and the run state records it`;
    const n = this.windows.get(workerId)?.hits.length ?? 0;
    return `worker ${workerId} is quarantined for the rest of the run: the learner excluded rows of ${n} of ${this.span()} (logp_old disagreeing with the learner's own recomputation at the row's behaviour version beyond grpo.logpTolerance; grpo.quarantineAfter ${this.o.after}, grpo.quarantineWindow ${this.o.window})`;
  }

  /**
   * What the learner's same-version check made of batch `seq`, from its TrainResult: `checked`, the batch's results
   * (groups) it examined, in batch order, each once (every excluded one among them); `excluded`, its excluded actions,
   * attributed; `unknown`, excluded action indices no worker is known for (out of the batch, or its groups forgotten).
   * Counted as `count` counts.
   */
  record(seq: number, checked: readonly CheckedResult[], excluded: ExcludedAction[], unknown: number[]): void {
    if (unknown.length) this.o.log(`GRPO batch ${seq}: the learner excluded ${unknown.length} actions whose rollout worker is not known (${unknown.slice(0, 8).join(', ')}${unknown.length > 8 ? ', ...' : ''})`);
    const byWorker = new Map<string, ExcludedAction[]>();
    for (const e of excluded) (byWorker.get(e.worker) ?? byWorker.set(e.worker, []).get(e.worker)!).push(e);
    this.count(seq, checked, [...byWorker].map(([worker, actions]) => {
      const shown = actions.slice(0, 8).map((a) => `${quoteForLog(a.sampleId, 64)}#${a.groupIndex}`).join(', ');
      return { worker, actions: actions.length, said: `GRPO batch ${seq}: the learner excluded ${actions.length} actions of rollout worker ${worker} (logp_old disagreeing with the learner's own recomputation at the row's behaviour version): ${shown}${actions.length > 8 ? ', ...' : ''}` };
    }));
  }

  /**
   * Whether batch `seq` still needs counting from the learner's kept report (lib/grpo/exclusion-reports.ts): this
   * process has not counted a TrainResult of it (nor its report), and has counted none of a later batch (the windows
   * are counted in batch order; the coordinator counts a TrainResult only in its acknowledgement chain, after every
   * earlier acknowledgement and its kept reports, so a later batch's is not counted first from message order alone).
   */
  needsReport(seq: number): boolean {
    return !this.pending.some((p) => p.seq >= seq);
  }

  /**
   * Batch `seq`'s checks as the learner's kept report records them, for a batch acknowledged without a TrainResult
   * that reports it (an orchestrator killed between its TrainResult and its acknowledgement: review29 F5). `results`:
   * per rollout worker id, its checked results in batch order ('x' excluded, 'p' passed); `actions`: per worker with
   * an excluded result, its excluded actions (absent from a round-32 learner's report: its rows are then not counted
   * in rollout_rows_excluded_total). Counted as `count` counts a TrainResult. Call only where needsReport(seq).
   */
  recordReported(seq: number, report: Pick<ExclusionReport, 'results' | 'actions'>): void {
    const checked: CheckedResult[] = [];
    for (const [worker, marks] of Object.entries(report.results)) for (const m of marks) checked.push({ worker, sampleId: '', excluded: m === 'x' });
    const excluded = Object.entries(report.results).flatMap(([worker, marks]) => {
      const x = [...marks].filter((m) => m === 'x').length;
      return x ? [{ worker, actions: report.actions?.[worker] ?? 0, said: `GRPO batch ${seq} (acknowledged without its TrainResult at hand; the learner's kept report of it): the learner excluded rows of ${x} of ${marks.length} checked rollout results of rollout worker ${worker}` }] : [];
    });
    this.count(seq, checked, excluded);
  }

  /**
   * Batch `seq`'s checks, from its TrainResult (`record`) or the learner's kept report of it (`recordReported`), one
   * path for both: `checked` is counted in the windows (passed and excluded results, in batch order per worker);
   * per worker in `excluded`, its excluded actions in rollout_rows_excluded_total, its line `said` logged with its
   * count in the window, and the worker quarantined at grpo.quarantineAfter excluded results among its last
   * grpo.quarantineWindow checked ones. The windows after it are kept for the batch's acknowledgement (`pending`),
   * and the batch needs no report from then on (needsReport), also at grpo.quarantineAfter 0 (its rows counted once).
   */
  private count(seq: number, checked: readonly CheckedResult[], excluded: ReadonlyArray<{ worker: string; actions: number; said: string }>): void {
    this.countWindows(checked);
    for (const e of excluded) {
      if (e.actions > 0) this.o.metrics.get('rollout_rows_excluded_total').inc({ worker_id: this.label(e.worker) }, e.actions);
      const n = this.windows.get(e.worker)?.hits.length ?? 0;
      this.o.log(`${e.said}${this.o.after > 0 ? `; ${n} of ${this.span()}, quarantined at ${this.o.after}` : ''}`);
      this.judge(e.worker, n);
    }
    this.pending.push({ seq, windows: this.stored() });
  }

  /** Quarantines `worker` if `n` (its excluded results in the window) reached grpo.quarantineAfter. */
  private judge(worker: string, n: number): void {
    if (this.o.after > 0 && n >= this.o.after && !this.quarantined.has(worker)) {
      this.quarantined.add(worker);
      this.o.metrics.get('workers_quarantined_total').inc();
      const why = this.reason(worker);
      this.o.log(`quarantined rollout worker ${worker}: ${why}${this.quarantined.size > QUARANTINE_STORED_MAX ? ` (not stored in the run state: it holds the first ${QUARANTINE_STORED_MAX} quarantined ids; a restarted orchestrator lets this one in until it is quarantined again)` : ''}`);
      this.o.close(worker, why);
    }
  }

  /** Counts `checked` in the windows, in batch order: only a worker with an exclusion in its window is followed (see `windows`). */
  private countWindows(checked: readonly CheckedResult[]): void {
    if (this.o.after > 0) {
      for (const c of checked) {
        let w = this.windows.get(c.worker);
        if (!w && !c.excluded) continue;
        if (!w) this.windows.set(c.worker, (w = { seen: 0, hits: [] }));
        w.seen += 1;
        if (c.excluded) w.hits.push(w.seen);
        if (this.o.window > 0) while (w.hits.length && w.hits[0]! <= w.seen - this.o.window) w.hits.shift();
        if (!w.hits.length) this.windows.delete(c.worker);
      }
    }
  }

  /** The worker_id label for `worker`: its id while fewer than QUARANTINE_LABELLED_WORKERS have one, else "other". */
  private label(worker: string): string {
    if (this.labelled.has(worker)) return worker;
    if (this.labelled.size >= QUARANTINE_LABELLED_WORKERS) return 'other';
    this.labelled.add(worker);
    return worker;
  }
}
