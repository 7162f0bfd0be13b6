// What every batch contains, as a pure function of its number (so a restarted orchestrator rebuilds it, and
// the single-process loop reads exactly what the pipeline reads): dataset cursors, sample ids, noise seeds.
import type { RunConfig } from '../config/index.ts';
import { hashSeed } from '../data/random.ts';

type Schedule = { sft: Pick<RunConfig['sft'], 'steps' | 'batchSize'>; grpo: Pick<RunConfig['grpo'], 'samplesPerBatch'> };

/** Dataset cursors of SFT batch seq (1-based). */
export function sftCursors(config: Pick<Schedule, 'sft'>, seq: number): number[] {
  const B = config.sft.batchSize;
  return Array.from({ length: B }, (_, i) => (seq - 1) * B + i);
}

/** Dataset cursors of GRPO batch k (0-based), after the warm start's. */
export function grpoCursors(config: Schedule, k: number): number[] {
  const S = config.grpo.samplesPerBatch;
  const base = config.sft.steps * config.sft.batchSize + k * S;
  return Array.from({ length: S }, (_, j) => base + j);
}

/** A GRPO group's id: the cursor makes it unique even when the dataset repeats an image. */
export function groupSampleId(cursor: number, datasetId: string): string {
  return `c${cursor}:${datasetId}`;
}

/** The noise seed of action `groupIndex` of a group (the rollout worker draws standardNormal(3HW, seed)). */
export function rolloutNoiseSeed(runSeed: number, sampleId: string, groupIndex: number): number {
  return hashSeed(runSeed, sampleId, groupIndex);
}
