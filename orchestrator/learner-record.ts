// The orchestrator's read of the learner's run-state record (key `learner-skips`: its non-finite skips and its kept
// exclusion reports, lib/grpo/exclusion-reports.ts), for the quarantine count of a batch acknowledged without its
// TrainResult (coordinator.ts countKeptReports). Read, never written (its NATS grant names its own key only).
import { permissionRefusal } from '../lib/transport/nats-refusal.ts';

/** The part of a RunStateStore read here. */
export interface LearnerRecordStore {
  readonly bucket: string;
  readonly key: string;
  get(): Promise<{ value: unknown } | null>;
}

/**
 * The reader of the record's `exclusion_reports` field (unchecked: readExclusionReports checks it; undefined when
 * none). `retrying` retries a NATS failure (orchestrator/main.ts retryingNats). Two failures are final, said once and
 * read as "no report" (nothing counted, as with an older learner): a record that is not JSON (that read), and the
 * server refusing the read (a grant without it, review32 F4: every later read is skipped, not retried for minutes
 * until the run fails).
 */
export function learnerRecordReader(record: LearnerRecordStore, log: (line: string) => void, retrying: <T>(what: string, op: () => Promise<T>) => Promise<T>): () => Promise<unknown> {
  let refused = false;
  return async () => {
    if (refused) return undefined;
    const value = await retrying('reading the learner\'s kept exclusion reports', async () => {
      try {
        return (await record.get())?.value;
      } catch (e) {
        if (permissionRefusal(e)) {
          refused = true;
          log(`the NATS server refuses this orchestrator's read of the learner's record ${record.bucket}/${record.key} (${(e as Error).message}): its kept exclusion reports are not read in this process, and the excluded results of GRPO batches acknowledged without their TrainResult are not counted in the quarantine windows (its grant must allow reading it: regenerate the server's nats.conf, docs/security.md)`);
          return undefined;
        }
        // not JSON: no report can be read from it (a NATS error is thrown on, and retried)
        if (!/is not JSON/.test((e as Error).message)) throw e;
        log(`the learner's record ${record.bucket}/${record.key} is not JSON: no exclusion report read from it`);
        return undefined;
      }
    });
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>)['exclusion_reports'] : undefined;
  };
}
