// The batch layout's guard (lib/grpo/sampling.ts batchLayout: the fields a batch number's samples are a function of).
// A run's batches are numbered under one layout; the orchestrator refuses to resume under another, whether the run
// state or the newest checkpoint recorded it (round 26: review26a F2, review26c F3), naming each field that differs
// (an exit-78 SetupError). A field present on one side only is equal when the value present is its schema default (a
// release added or removed it: review26d F2); a checkpoint's layout that cannot be read is counted as an unverified
// claim and not trusted, never fatal (review26d F3).
import { SetupError } from '../lib/config/setup-error.ts';
import type { Metrics } from '../lib/metrics/index.ts';
import { BATCH_LAYOUT_META_KEY, compareLayouts, parseBatchLayout, type BatchLayout, type LayoutComparison } from '../lib/grpo/sampling.ts';

/**
 * What checkpoint announcement `meta` (version `version`) says of its batch layout against this configuration's
 * `layout`: `absent` when it records none (written by an older learner, before fix26b of round 26); `unreadable` when
 * extra.batch_layout is not a layout (not a string, not JSON, wrong shape: parseBatchLayout); else the comparison,
 * `changed` listing each "field: the checkpoint's -> this configuration's".
 */
export type CheckpointLayoutCheck = { kind: 'absent' } | { kind: 'unreadable'; reason: string } | ({ kind: 'compared' } & LayoutComparison);

export function checkCheckpointLayout(meta: Record<string, unknown>, version: number, layout: BatchLayout): CheckpointLayoutCheck {
  const text = meta[BATCH_LAYOUT_META_KEY];
  if (text === undefined) return { kind: 'absent' };
  const what = `checkpoint v${version}'s extra.${BATCH_LAYOUT_META_KEY}`;
  if (typeof text !== 'string') return { kind: 'unreadable', reason: `${what}: not a string` };
  const recorded = parseBatchLayout(text, what);
  return recorded instanceof Error ? { kind: 'unreadable', reason: recorded.message } : { kind: 'compared', ...compareLayouts(recorded, layout) };
}

/** One run's guard: this configuration's layout against what the run state and the checkpoints recorded. */
export class LayoutGuard {
  /** Each checkpoint version whose unreadable layout was counted and logged, and each line of defaulted fields: once each. */
  private readonly unreadableLogged = new Set<number>();
  private readonly defaultedLogged = new Set<string>();

  constructor(
    private readonly runId: string,
    readonly layout: BatchLayout,
    private readonly metrics: Metrics,
    private readonly log: (line: string) => void,
  ) {}

  /** The exit-78 refusal of a run whose batches `where` numbered under another batch layout, naming each field. */
  refusal(where: string, changes: readonly string[]): SetupError {
    return new SetupError(`run ${this.runId}: ${where} numbered its batches under another batch layout, and a batch's samples are a function of its number and these fields (lib/grpo/sampling.ts batchLayout), so resuming would train other samples under the same numbers: ${changes.join('; ')} (the run's value -> this configuration's). Start it with the run's values of these fields (any other field may change), or give this configuration a new run.id to start a new run`);
  }

  /** The layout the run state recorded (`what`, e.g. "stored run state (after batch 4)"): a refusal when it differs; defaulted fields logged. */
  checkStored(stored: BatchLayout, what: string): void {
    const c = compareLayouts(stored, this.layout);
    if (c.changed.length) throw this.refusal(`its ${what}`, c.changed);
    this.logDefaulted(`the ${what}`, c.defaulted);
  }

  /**
   * Checkpoint `ann`'s layout: its changed fields (null when none to compare: recorded by an older learner), or, when
   * unreadable, counted as an unverified claim, logged once, and the checkpoint not trusted (`trusted` false).
   */
  checkpoint(ann: { version: number; meta: Record<string, unknown> }): { changed: string[]; trusted: boolean } | null {
    const c = checkCheckpointLayout(ann.meta, ann.version, this.layout);
    if (c.kind === 'absent') return null;
    if (c.kind === 'unreadable') {
      if (!this.unreadableLogged.has(ann.version)) {
        this.unreadableLogged.add(ann.version);
        this.metrics.get('task_errors_total').inc({ worker_role: 'learner', code: 'unverified_claim' });
        this.log(`${c.reason}: not a batch layout, so the checkpoint's progress (last_batch_seq ${String(ann.meta['last_batch_seq'])}) is not trusted: no learner is caught up to it (the batches after the run state's are sent again, and the learner answers those it holds)`);
      }
      return { changed: [], trusted: false };
    }
    this.logDefaulted(`checkpoint v${ann.version}`, c.defaulted);
    return { changed: c.changed, trusted: true };
  }

  /** The log line of layout fields found equal by their schema default, once per distinct line. */
  private logDefaulted(where: string, defaulted: readonly string[]): void {
    if (!defaulted.length) return;
    const line = `${where}: batch layout field(s) present on one side only, taken as equal because the value present is the field's default (a release added or removed the field): ${defaulted.join('; ')}`;
    if (this.defaultedLogged.has(line)) return;
    this.defaultedLogged.add(line);
    this.log(line);
  }
}
