// The load bench's processes' V8 heap growth: each side runs with its role's, as recovery-grpo's roles apply it at
// their start (lib/deploy/heap-growth.ts: the orchestrator 300%, the rollout worker 100%; $RECOVERY_GRPO_HEAP_GROWING_PERCENT
// sets both; 0 = V8's own heuristic, what rounds 4-21's bench ran). A --heap-growing-percent node flag given to the
// process (node's own command line, or LOAD_WORKER_NODE_FLAGS for the workers' processes) wins over the role's, so an
// arm can still set one side alone.
import { setFlagsFromString } from 'node:v8';
import { applyHeapGrowth, type HeapRole } from '../lib/deploy/heap-growth.ts';

const FLAG = '--heap-growing-percent=';

/** The --heap-growing-percent given on this process's node command line, if any. */
export function heapGrowthFlag(execArgv: readonly string[] = process.execArgv): number | undefined {
  const last = execArgv.filter((a) => a.startsWith(FLAG)).pop();
  return last === undefined ? undefined : Number(last.slice(FLAG.length));
}

/**
 * Applies `role`'s heap growth to this process unless its command line sets one; returns the percent in force and a
 * function that puts back what was before (the flag, else V8's heuristic: bench/index.ts runs other benches in the
 * same process).
 */
export function roleHeapGrowth(role: HeapRole): { percent: number; restore: () => void } {
  const own = heapGrowthFlag();
  if (own !== undefined) return { percent: own, restore: () => {} };
  const percent = applyHeapGrowth(process.env, role);
  return { percent, restore: () => { if (percent > 0) setFlagsFromString(`${FLAG}0`); } };
}
