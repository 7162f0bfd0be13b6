// How many corruption draws an evaluation image gets (eval.draws, docs/evaluation.md). 'one': one (type, level)
// per image from the mix, as training draws it (rounds 1-6). 'every-type': one draw per type the mix can draw,
// each at a level chosen by (seed, image, type), so every type row of a report holds every image and the level
// rows stay balanced. Both are pure functions of their inputs: no draw depends on which other images or types
// are evaluated.
import { CORRUPTION_TYPES, corruptionMixSchema, LEVELS, typeWeights, type CorruptionMix, type CorruptionMixInput, type CorruptionType } from './corruptions.ts';
import { hashSeed, rng } from './random.ts';

export const EVAL_DRAWS = ['one', 'every-type'] as const;
export type EvalDraws = (typeof EVAL_DRAWS)[number];

/** One corruption of one image: the type, its level, and the seed of the corruption's own randomness. */
export interface CorruptionDraw {
  type: CorruptionType;
  level: number;
  seed: number;
}

/** The types the mix can draw (weight > 0), in CORRUPTION_TYPES order. */
export function mixTypes(mix: CorruptionMixInput | CorruptionMix): CorruptionType[] {
  const w = typeWeights(corruptionMixSchema.parse(mix));
  return CORRUPTION_TYPES.filter((_, k) => w[k]! > 0);
}

/**
 * Image `id`'s draws under 'every-type': one per type of the mix, in CORRUPTION_TYPES order. The level is drawn
 * uniformly from the mix's levels (or its range) by a generator seeded with (seed, id, type), as is the
 * corruption's randomness.
 */
export function everyTypeDraws(mix: CorruptionMixInput | CorruptionMix, seed: number, id: string): CorruptionDraw[] {
  const m = corruptionMixSchema.parse(mix);
  return mixTypes(m).map((type) => {
    const r = rng(hashSeed(seed, 'eval-level', id, type));
    let level: number;
    if (Array.isArray(m.levels)) {
      const l = r.pick(m.levels);
      level = typeof l === 'string' ? LEVELS[l] : l;
    } else level = m.levels.min + (m.levels.max - m.levels.min) * r.float();
    return { type, level, seed: hashSeed(seed, 'eval-corrupt', id, type) };
  });
}
