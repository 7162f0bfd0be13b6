// The one rule for a run id. It becomes part of NATS subjects and bucket names, so the run configuration
// (lib/config/schema.ts) checks it at load with this same pattern, and the transport refuses anything else.

/** Letters, digits, "_" and "-", 1 to 64 characters, starting with a letter or digit (never a flag-like "-x"). */
export const RUN_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export const RUN_ID_RULE = 'must be 1 to 64 letters, digits, "_" or "-", starting with a letter or digit (it names NATS subjects and buckets)';

export function checkRunId(runId: string): string {
  if (!RUN_ID_PATTERN.test(runId)) throw new Error(`runId ${JSON.stringify(runId)} ${RUN_ID_RULE}`);
  return runId;
}
