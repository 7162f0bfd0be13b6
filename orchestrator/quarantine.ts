// Rollout workers whose log-densities the learner refused (docs/security.md, "Forged log-densities"). The learner's
// same-version check excludes a row whose logp_old disagrees with its own (lib/grpo/logp-check.ts) and says which
// actions in its TrainResult (excluded_actions); only the orchestrator knows which worker produced each. Every such
// action is logged naming the worker and counted per worker; a worker id with grpo.quarantineAfter results (groups)
// excluded is quarantined for the rest of the run: its session is closed and a reconnect with that id refused, so it
// cannot keep wasting each batch's rows (or, at maxStaleness > 0, steer steps within the dual clip).
import type { Metrics } from '../lib/metrics/index.ts';
import { quoteForLog } from '../lib/log/quote.ts';

/** At most this many worker ids get their own rollout_rows_excluded_total series; later ones count as "other". */
export const QUARANTINE_LABELLED_WORKERS = 64;

/** An excluded action, attributed: the worker whose accepted rollout result carried it. */
export interface ExcludedAction {
  worker: string;
  sampleId: string;
  groupIndex: number;
}

export class Quarantine {
  /** Per worker id: the groups (sample ids) with excluded rows. */
  private readonly groups = new Map<string, Set<string>>();
  private readonly quarantined = new Set<string>();
  private readonly labelled = new Set<string>();

  /** `after`: grpo.quarantineAfter (0: never). `close(workerId, reason)` ends the worker's open sessions. */
  /** Ids quarantined by an earlier orchestrator process of the run (RunState.quarantined). */
  private readonly restored = new Set<string>();

  /**
   * `after`: grpo.quarantineAfter (0: never). `close(workerId, reason)` ends the worker's open sessions. `restored`:
   * the ids the run state records as quarantined (a restarted orchestrator keeps refusing them).
   */
  constructor(private readonly o: { after: number; metrics: Metrics; log: (line: string) => void; close: (workerId: string, reason: string) => void; restored?: readonly string[] }) {
    for (const id of o.restored ?? []) {
      this.quarantined.add(id);
      this.restored.add(id);
    }
  }

  /** Every quarantined worker id, sorted (what the run state records). */
  ids(): string[] {
    return [...this.quarantined].sort();
  }

  isQuarantined(workerId: string): boolean {
    return this.quarantined.has(workerId);
  }

  /** Why a worker connecting as `workerId` is refused (undefined: it is not). */
  refusal(workerId: string): string | undefined {
    return this.quarantined.has(workerId) ? this.reason(workerId) : undefined;
  }

  private reason(workerId: string): string {
    if (this.restored.has(workerId)) return `worker ${workerId} is quarantined for the rest of the run: an earlier orchestrator process of the run quarantined it (the learner excluded rows of its rollout results: logp_old disagreeing with the learner's own at the same version beyond grpo.logpTolerance), and the run state records it`;
    const n = this.groups.get(workerId)?.size ?? 0;
    return `worker ${workerId} is quarantined for the rest of the run: the learner excluded rows of ${n} of its rollout results (logp_old disagreeing with the learner's own at the same version beyond grpo.logpTolerance; grpo.quarantineAfter ${this.o.after})`;
  }

  /**
   * The actions of batch `seq` the learner excluded, attributed (`unknown`: indices no worker is known for: out of
   * the batch, or its groups forgotten). Logs each worker's, counts them, and quarantines a worker id that reached
   * grpo.quarantineAfter groups.
   */
  record(seq: number, excluded: ExcludedAction[], unknown: number[]): void {
    if (unknown.length) this.o.log(`GRPO batch ${seq}: the learner excluded ${unknown.length} actions whose rollout worker is not known (${unknown.slice(0, 8).join(', ')}${unknown.length > 8 ? ', ...' : ''})`);
    const byWorker = new Map<string, ExcludedAction[]>();
    for (const e of excluded) (byWorker.get(e.worker) ?? byWorker.set(e.worker, []).get(e.worker)!).push(e);
    for (const [worker, actions] of byWorker) {
      this.o.metrics.get('rollout_rows_excluded_total').inc({ worker_id: this.label(worker) }, actions.length);
      // the groups are counted only to quarantine: with quarantineAfter 0 nothing is kept (a long run's ids would pile up)
      const groups = this.o.after > 0 ? this.groups.get(worker) ?? this.groups.set(worker, new Set()).get(worker)! : new Set<string>();
      for (const a of actions) groups.add(a.sampleId);
      const shown = actions.slice(0, 8).map((a) => `${quoteForLog(a.sampleId, 64)}#${a.groupIndex}`).join(', ');
      this.o.log(`GRPO batch ${seq}: the learner excluded ${actions.length} actions of rollout worker ${worker} (logp_old disagreeing with the learner's own at the same version): ${shown}${actions.length > 8 ? ', ...' : ''}${this.o.after > 0 ? `; ${groups.size} of its results so far, quarantined at ${this.o.after}` : ''}`);
      if (this.o.after > 0 && groups.size >= this.o.after && !this.quarantined.has(worker)) {
        this.quarantined.add(worker);
        this.o.metrics.get('workers_quarantined_total').inc();
        const why = this.reason(worker);
        this.o.log(`quarantined rollout worker ${worker}: ${why}`);
        this.o.close(worker, why);
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
