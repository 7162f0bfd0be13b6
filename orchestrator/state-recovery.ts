// A run state lost while the orchestrator was down (round 33; review26c finding 6). The NATS store lost (or the key
// deleted) takes the run state with it; the learner puts its checkpoint back, and a Hello catches a fresh state up to
// it. Since round 33 that checkpoint also records the orchestrator's quarantine and worker-id bindings as the newest
// TrainBatch carried them (announcement meta worker_ids, not in the checkpoint bytes; lib/transport/worker-id-record.ts): taken back here, validated like the
// run state's own fields. Content that is not a record is an unverified claim, as an unreadable extra.batch_layout is:
// counted (task_errors_total code unverified_claim), logged once per checkpoint, not trusted. Either way the loss is
// said once per process, with what was recovered and what was not (the quarantine windows' counts), and counted
// (run_state_lost_total).
import type { Metrics } from '../lib/metrics/index.ts';
import { parseWorkerIds, WORKER_IDS_META_KEY, type WorkerIds } from '../lib/transport/worker-id-record.ts';

/** What a checkpoint's meta gives back: its record, none (an older learner), or content that was refused. */
export type RecoveredIds = { kind: 'read'; ids: WorkerIds } | { kind: 'absent' } | { kind: 'refused'; reason: string };

/**
 * Where the record is: checkpoint `version`'s announcement meta worker_ids (signed with the announcement in a signed
 * run), never its bytes' extra (round 33, fix33), as the learner names it.
 */
const recordAt = (version: number) => `checkpoint v${version}'s announcement meta ${WORKER_IDS_META_KEY}`;

const list = (xs: readonly string[]) => `${xs.slice(0, 16).map((x) => JSON.stringify(x)).join(', ')}${xs.length > 16 ? ', ...' : ''}`;

export class StateRecovery {
  private readonly refusedLogged = new Set<number>();
  private said = false;

  /**
   * `lift`: --lift-quarantine's ids and `unbind`: --unbind's keys; never taken back by `read` with `filter` (a Hello's
   * catch-up: at start, liftQuarantine and unbindIds run after the take-back, and log it).
   */
  constructor(private readonly o: { metrics: Metrics; log: (line: string) => void; lift: readonly string[]; unbind: readonly string[] }) {}

  /** Checkpoint `version`'s record (its announcement meta `meta`), refused content counted and logged once. */
  read(version: number, meta: Record<string, unknown>, filter: boolean): RecoveredIds {
    const text = meta[WORKER_IDS_META_KEY];
    if (text === undefined) return { kind: 'absent' };
    const ids = parseWorkerIds(text, recordAt(version));
    if (ids instanceof Error) {
      if (!this.refusedLogged.has(version)) {
        this.refusedLogged.add(version);
        this.o.metrics.get('task_errors_total').inc({ worker_role: 'learner', code: 'unverified_claim' });
        this.o.log(`${ids.message}: not taken back (an unverified claim: no quarantine or worker-id binding comes from it)`);
      }
      return { kind: 'refused', reason: ids.message };
    }
    if (!filter) return { kind: 'read', ids };
    const lifted = ids.quarantined.filter((id) => this.o.lift.includes(id));
    const unbound = Object.keys(ids.boundIds).filter((k) => this.o.unbind.includes(k));
    if (lifted.length) this.o.log(`${recordAt(version)}: rollout worker id(s) ${list(lifted)} not taken back: lifted by --lift-quarantine`);
    if (unbound.length) this.o.log(`${recordAt(version)}: binding(s) ${list(unbound)} not taken back: dropped by --unbind`);
    return {
      kind: 'read',
      ids: { quarantined: ids.quarantined.filter((id) => !lifted.includes(id)), boundIds: Object.fromEntries(Object.entries(ids.boundIds).filter(([k]) => !unbound.includes(k))) },
    };
  }

  /**
   * Says, once per process, that the run state was lost while checkpoint `version` records batch `lastBatchSeq`, and
   * what `got` gave back; counts it (run_state_lost_total). `where`: "at start" or the catch-up.
   */
  lost(version: number, lastBatchSeq: number, got: RecoveredIds, where: string): void {
    if (this.said) return;
    this.said = true;
    this.o.metrics.get('run_state_lost_total').inc();
    const taken = got.kind === 'read'
      ? `taken back from it: ${got.ids.quarantined.length} quarantined rollout worker id(s)${got.ids.quarantined.length ? ` (${list(got.ids.quarantined)})` : ''} and ${Object.keys(got.ids.boundIds).length} worker-id binding(s)${Object.keys(got.ids.boundIds).length ? ` (${list(Object.keys(got.ids.boundIds))})` : ''} (its announcement's meta ${WORKER_IDS_META_KEY}, as the newest batch it trained carried them)`
      : got.kind === 'absent'
        ? `it records no quarantine or worker-id bindings (an older learner, or an older orchestrator's batches): rollout worker ids quarantined earlier may connect again until caught again, and worker-id bindings start afresh`
        : `its announcement's meta ${WORKER_IDS_META_KEY} was refused (above): rollout worker ids quarantined earlier may connect again until caught again, and worker-id bindings start afresh`;
    this.o.log(`WARNING: ${where}, the run state is missing (or acknowledged no batch) while the newest checkpoint v${version} records batch ${lastBatchSeq}: the run state was lost (the NATS store lost, or the key deleted, while the orchestrator was down); the progress is taken from the checkpoint (a learner's catch-up); ${taken}; not recovered: the quarantine windows' counts, which start from zero, and ids quarantined or bound after that batch was sent (run_state_lost_total; docs/reliability.md)`);
  }
}
