// The names of a run's NATS streams, buckets and subjects, in one place: the stores make them (nats.ts) and the
// NATS grants name them (nats-permissions.ts, where the run is known when the config is written).

export { checkRunId } from './run-id.ts';

/** The run's checkpoint object store (nats.js bucket; its stream is objectStream(...)). */
export const checkpointBucket = (runId: string): string => `checkpoints-${runId}`;
/** The run's announcement stream and the one subject it stores. */
export const announcementStream = (runId: string): string => `recovery-ckpt-${runId}`;
export const announcementSubject = (runId: string): string => `recovery.${runId}.checkpoint`;
/** The run state's KV bucket (nats.js; its stream is kvStream(...)). */
export const runStateBucket = (runId: string): string => `runstate-${runId}`;
/**
 * The run's own bucket of the learner's optimizer state (round 25), where the NATS grants name the run; a grant for
 * every run keeps the shared LEARNER_STATE_BUCKET (nats-permissions.ts), whose fixed name the other roles are denied.
 */
export const learnerStateBucket = (runId: string): string => `learner-state-${runId}`;
/** The stream nats.js keeps an object store's bucket in. */
export const objectStream = (bucket: string): string => `OBJ_${bucket}`;
/** The stream nats.js keeps a KV bucket in. */
export const kvStream = (bucket: string): string => `KV_${bucket}`;
