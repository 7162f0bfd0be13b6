// V8's old-generation growth for the long-running roles (orchestrator, learner, rollout and reward workers).
//
// Why: V8 starts a full mark-compact when the old generation's free room (its limit minus its size minus the
// ArrayBuffer bytes allocated since the last mark-compact) falls below the young generation's capacity (16 MiB).
// Every tensor of a role is an ArrayBuffer, so on a small heap that room is spent by tensors alone: the
// orchestrator's limit was 83 MB at 59 MB live (V8's growing factor for its speed ratio), 8 MB of room, and it ran
// a mark-compact of its whole heap every 0.5-1 s of the GRPO phase, each collecting 1-4 MB; garbage collection was
// half of its CPU (docs/performance-history/pipeline.md, "Round 7 (pipe7)"). A fixed factor of 2 leaves as much room as the heap is
// large. Cost: a role's JavaScript heap may grow to twice its live size before it is collected (the orchestrator's
// ~60 MB live heap to ~120 MB). Results do not depend on it (only when garbage is collected).
//
// Per role (round 14, docs/performance-history/pipeline.md "Round 14: roles14"): with a factor of 2 the orchestrator still ran 2-3
// mark-compacts per 40 GRPO batches (each collecting ~3 MB of objects: the room is spent by something else, most likely relayed tensors' buffers),
// and they were a fifth of its CPU in a perf profile; with a factor of 4 it ran 1 (in 7 runs of 7). The orchestrator
// gets 300; the other roles keep 100 (the rollout worker's 0-1 per 40 batches did not change measurably).
import { setFlagsFromString } from 'node:v8';

export const HEAP_GROWTH_ENV = 'RECOVERY_GRPO_HEAP_GROWING_PERCENT';
/** The old generation's limit after a mark-compact: live size x (1 + this / 100), for a role without its own. */
export const DEFAULT_HEAP_GROWING_PERCENT = 100;

/** The processes whose heap growth is set: the four roles. */
export type HeapRole = 'orchestrator' | 'rollout' | 'reward' | 'learner';
/** Each role's percent when the environment does not set one. */
export const ROLE_HEAP_GROWING_PERCENT: Readonly<Record<HeapRole, number>> = Object.freeze({ orchestrator: 300, rollout: 100, reward: 100, learner: 100 });

/**
 * The percent from `env` ($RECOVERY_GRPO_HEAP_GROWING_PERCENT, for every role; 0 leaves V8's own heuristic), else
 * `role`'s own default, else DEFAULT_HEAP_GROWING_PERCENT.
 */
export function heapGrowingPercent(env: NodeJS.ProcessEnv = process.env, role?: HeapRole): number {
  const raw = env[HEAP_GROWTH_ENV];
  if (raw === undefined || raw.trim() === '') return role !== undefined ? ROLE_HEAP_GROWING_PERCENT[role] : DEFAULT_HEAP_GROWING_PERCENT;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 1000) throw new Error(`${HEAP_GROWTH_ENV} must be an integer from 0 to 1000 (0: V8's own growth), got '${raw}'`);
  return n;
}

/** Sets V8's heap growing factor for this process (call once at a role's start); returns the percent applied. */
export function applyHeapGrowth(env: NodeJS.ProcessEnv = process.env, role?: HeapRole): number {
  const percent = heapGrowingPercent(env, role);
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
  return percent;
}
