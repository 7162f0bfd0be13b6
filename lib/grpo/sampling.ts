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

/**
 * The batch layout: the configuration fields a batch number's content is a function of, each by its config path
 * (data.* flattened to its leaves; arrays are leaves). sftCursors and grpoCursors read sft.steps, sft.batchSize and
 * grpo.samplesPerBatch; the sample under a cursor (its image, corruption and level: openRunDataset, lib/config/
 * dataset.ts) is a function of data.* and run.seed, which also seeds the rollouts' noise (rolloutNoiseSeed). Nothing
 * else changes which samples a batch number names, so a run may resume under a configuration that changes any other
 * field (grpo.steps to extend it, leases, evaluation, optimiser, tolerances). The orchestrator stores it in its run
 * state and the learner in each checkpoint (extra.batch_layout); both are compared at the orchestrator's start
 * (orchestrator/main.ts). A field present on one side only counts as changed (an optional data field set or unset).
 */
export type BatchLayout = Record<string, unknown>;

/** The checkpoint metadata key (extra.batch_layout: BatchLayout as JSON) the learner records the layout under. */
export const BATCH_LAYOUT_META_KEY = 'batch_layout';

export function batchLayout(config: Pick<RunConfig, 'run' | 'data'> & Schedule): BatchLayout {
  const out: BatchLayout = { 'run.seed': config.run.seed };
  const flatten = (prefix: string, v: unknown) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      for (const k of Object.keys(v).sort()) flatten(`${prefix}.${k}`, (v as Record<string, unknown>)[k]);
    } else if (v !== undefined) out[prefix] = v;
  };
  flatten('data', config.data);
  out['sft.steps'] = config.sft.steps;
  out['sft.batchSize'] = config.sft.batchSize;
  out['grpo.samplesPerBatch'] = config.grpo.samplesPerBatch;
  return out;
}

/** Each field whose value differs between the run's layout `was` and `now`, as "field: was -> now" (unset: absent). */
export function layoutDifferences(was: BatchLayout, now: BatchLayout): string[] {
  const show = (v: unknown) => (v === undefined ? '(unset)' : JSON.stringify(v));
  const fields = [...new Set([...Object.keys(was), ...Object.keys(now)])].sort();
  return fields.filter((f) => JSON.stringify(was[f]) !== JSON.stringify(now[f])).map((f) => `${f}: ${show(was[f])} -> ${show(now[f])}`);
}

/** A layout read back (a run state's field, a checkpoint's extra.batch_layout); an Error naming `what` when it is not one. */
export function parseBatchLayout(text: string, what: string): BatchLayout | Error {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return new Error(`${what}: not JSON (${(e as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return new Error(`${what}: not a JSON object`);
  return v as BatchLayout;
}
