// What every batch contains, as a pure function of its number (so a restarted orchestrator rebuilds it, and
// the single-process loop reads exactly what the pipeline reads): dataset cursors, sample ids, noise seeds.
import type { RunConfig } from '../config/index.ts';
import { configSchema } from '../config/schema.ts';
import { schemaAt, unwrap } from '../config/introspect.ts';
import { CORRUPTION_TYPES } from '../data/corruptions.ts';
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
 * (orchestrator/main.ts), and a checkpoint's again at each learner catch-up.
 *
 * It covers the configuration, not the data: a folder or manifest (data.source.path) whose files were added, removed
 * or changed under the same path names other samples under the same numbers and is not detected; the built-in photo
 * manifest (lib/data/photos.jsonl) is part of the code, so a release that changes it changes the photographs too.
 * A field present on one side only (an optional data field set or unset) counts as changed, unless the other side's
 * value is the field's schema default: a release that adds a data.* field with a default keeping the old behaviour
 * (as data.augment and data.valImages were added) finds it missing from every layout stored before it, and an older
 * release finds it in the newer learner's checkpoints (compareLayouts: `defaulted`). data.corruptions.types compares
 * as the set of types it draws from ('all' and a list of all 16 types are equal, and a list's order does not count:
 * lib/data/dataset.ts dataConfigFrom weighs the types by name), and a type's weight 1 equals no weight for it (a type
 * without an entry in data.corruptions.weights weighs 1).
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

const CORRUPTION_WEIGHT_PREFIX = 'data.corruptions.weights.';

/** The schema default of layout field `field` (a config path), or undefined when it has none (or the schema has no such field). */
function layoutFieldDefault(field: string): { value: unknown } | undefined {
  // a type without an entry in data.corruptions.weights weighs 1 (its schema), so weight 1 and no entry draw the same
  if (field.startsWith(CORRUPTION_WEIGHT_PREFIX)) return { value: 1 };
  const s = schemaAt(configSchema, field.split('.'));
  if (!s) return undefined;
  const u = unwrap(s);
  return u.hasDefault ? { value: u.defaultValue } : undefined;
}

/** A layout value as compared: data.corruptions.types as the sorted set it names ('all' for every type). */
function comparable(field: string, v: unknown): string {
  if (field === 'data.corruptions.types' && Array.isArray(v) && v.every((t) => typeof t === 'string')) {
    const set = [...new Set(v as string[])].sort();
    return JSON.stringify(CORRUPTION_TYPES.every((t) => set.includes(t)) && set.length === CORRUPTION_TYPES.length ? 'all' : set);
  }
  return JSON.stringify(v);
}

export interface LayoutComparison {
  /** Each field whose value differs, as "field: was -> now" (unset: absent). */
  changed: string[];
  /** Each field present on one side only whose value there is its schema default, so equal (see BatchLayout). */
  defaulted: string[];
}

/** Compares the run's layout `was` with `now` (see BatchLayout for what counts as equal). */
export function compareLayouts(was: BatchLayout, now: BatchLayout): LayoutComparison {
  const show = (v: unknown) => (v === undefined ? '(unset)' : JSON.stringify(v));
  const out: LayoutComparison = { changed: [], defaulted: [] };
  for (const f of [...new Set([...Object.keys(was), ...Object.keys(now)])].sort()) {
    const a = was[f];
    const b = now[f];
    if (a !== undefined && b !== undefined ? comparable(f, a) === comparable(f, b) : a === b) continue;
    const present = a === undefined ? b : a;
    const d = layoutFieldDefault(f);
    if ((a === undefined) !== (b === undefined) && d && comparable(f, present) === comparable(f, d.value)) {
      out.defaulted.push(`${f} (${a === undefined ? "absent from the run's layout" : "absent from this configuration's layout"}; ${show(present)} is its default)`);
    } else out.changed.push(`${f}: ${show(a)} -> ${show(b)}`);
  }
  return out;
}

/** Each field whose value differs between the run's layout `was` and `now`, as "field: was -> now" (unset: absent). */
export function layoutDifferences(was: BatchLayout, now: BatchLayout): string[] {
  return compareLayouts(was, now).changed;
}

/**
 * A layout read back (a checkpoint's extra.batch_layout); an Error naming `what` when it is not one: not JSON, not an
 * object, no numeric run.seed (every layout records it), or a field whose value is an object (the layout's values are
 * leaves: numbers, strings, booleans, arrays).
 */
export function parseBatchLayout(text: string, what: string): BatchLayout | Error {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return new Error(`${what}: not JSON (${(e as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return new Error(`${what}: not a JSON object`);
  const o = v as Record<string, unknown>;
  if (typeof o['run.seed'] !== 'number') return new Error(`${what}: no numeric run.seed (every batch layout records it)`);
  const nested = Object.keys(o).find((k) => o[k] === null || (typeof o[k] === 'object' && !Array.isArray(o[k])));
  if (nested !== undefined) return new Error(`${what}: field ${JSON.stringify(nested)} is ${o[nested] === null ? 'null' : 'an object'}, not a leaf value`);
  return o;
}
