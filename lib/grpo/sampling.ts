// What every batch contains, as a pure function of its number (so a restarted orchestrator rebuilds it, and
// the single-process loop reads exactly what the pipeline reads): dataset cursors, sample ids, noise seeds.
import type { RunConfig } from '../config/index.ts';
import { hashSeed, standardNormal } from '../data/random.ts';

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

/**
 * The identity member's action (grpo.identityAnchor > 0; docs/grpo.md, "Identity member"): the corrupted image
 * plus sigma times the noise of the group's action 0, so that it is compared with the group's actions under the
 * same exploration noise (a noise-free identity would beat most groups by the noise's cost alone). sigma is
 * exp(model.logStd), fixed (the schema refuses the identity member with model.learnLogStd). Not clamped: the
 * scorer's caller clamps it as it clamps the actions.
 */
export function identityAction(config: Pick<RunConfig, 'run' | 'model'>, sampleId: string, image: Float32Array): Float32Array {
  const sigma = Math.fround(Math.exp(Math.fround(config.model.logStd)));
  const noise = standardNormal(image.length, rolloutNoiseSeed(config.run.seed, sampleId, 0));
  const out = new Float32Array(image.length);
  for (let i = 0; i < image.length; i++) out[i] = image[i]! + sigma * noise[i]!;
  return out;
}
