// Paired differences between the arms of a `sweep --methods` report (compare.json): per seed, one arm's final
// value minus another's on the same images and corruption draws, then the t interval over seeds
// (lib/eval/stats.ts, the interval compare.ts reports). Pairing removes what the seeds' draws share (an easy
// draw lifts every arm), which the per-arm intervals keep. Besides arms, a side may be `identity` (the
// corrupted input) or `start:FAMILY` (that family's warm start). scripts/compare-paired.ts prints it.
// The t over the seeds' means misses the photographs' part: the seeds were evaluated on the same photographs, so a
// photograph's difficulty is shared by every seed and the seeds' means are not the whole story of a new photograph.
// Where the report keeps every draw's scores (perSample, since round 7), the crossed seeds x photographs interval
// (lib/eval/crossed.ts) takes both as samples; it is given beside the t over seeds.
import { pooledDifference, type PooledDifference } from '../eval/crossed.ts';
import type { PerSample } from '../eval/evaluate.ts';
import { meanCI, type MeanCI } from '../eval/stats.ts';

export const PAIRED_METRICS = ['reward', 'ssim', 'psnr'] as const;
export type PairedMetric = (typeof PAIRED_METRICS)[number];
type Values = Record<PairedMetric, number> & { perSample?: PerSample };

/** The part of compare.json's per-seed results that pairing reads. */
export interface PairedSeed {
  seed: number;
  identity: Values;
  start: Record<string, Values>;
  runs: Array<{ method: string; steps: number; final: Values }>;
}

export interface PairedDifference {
  a: string;
  b: string;
  metric: PairedMetric;
  /** a - b per seed, in the report's seed order. */
  perSeed: number[];
  /** t over the seeds' a - b. */
  ci: MeanCI;
  /** Seeds x photographs, crossed; null when a seed lacks either side's per-draw scores. */
  crossed: PooledDifference | null;
}

/** The seeds of a compare.json text; `file` names it in errors. */
export function parseCompareSeeds(text: string, file: string): PairedSeed[] {
  const seeds = (JSON.parse(text) as { seeds?: PairedSeed[] }).seeds;
  if (!Array.isArray(seeds) || seeds.length === 0) throw new Error(`${file}: no "seeds" array (not a sweep --methods compare.json)`);
  return seeds;
}

/** Names a side may take in this report: its arms, then identity and each family's warm start. */
export function sidesOf(seeds: readonly PairedSeed[]): string[] {
  const arms = seeds[0]!.runs.map((r) => r.method);
  return [...arms, 'identity', ...Object.keys(seeds[0]!.start).map((f) => `start:${f}`)];
}

function sideOf(s: PairedSeed, side: string): Values | undefined {
  if (side === 'identity') return s.identity;
  if (side.startsWith('start:')) return s.start[side.slice('start:'.length)];
  return s.runs.find((r) => r.method === side)?.final;
}

function valueOf(s: PairedSeed, side: string, metric: PairedMetric, file: string): number {
  const x = sideOf(s, side)?.[metric];
  if (typeof x !== 'number') throw new Error(`${file}: seed ${s.seed} has no '${side}' ${metric} (sides in this report: ${sidesOf([s]).join(', ')})`);
  return x;
}

/** `a` minus `b` for each metric, paired by seed; every seed must hold both sides. */
export function pairedDifferences(seeds: readonly PairedSeed[], a: string, b: string, file = 'compare.json'): PairedDifference[] {
  return PAIRED_METRICS.map((metric) => {
    const perSeed = seeds.map((s) => valueOf(s, a, metric, file) - valueOf(s, b, metric, file));
    const draws = seeds.map((s) => ({ a: sideOf(s, a)!.perSample, b: sideOf(s, b)!.perSample }));
    const complete = draws.filter((d): d is { a: PerSample; b: PerSample } => d.a !== undefined && d.b !== undefined);
    const crossed = complete.length === seeds.length ? pooledDifference(complete, metric) : null;
    return { a, b, metric, perSeed, ci: meanCI(perSeed), crossed };
  });
}

/** `A-B` arguments (arm names hold no '-'); without any: the first arm against each other arm, as compare.md. */
export function parsePairs(args: readonly string[], seeds: readonly PairedSeed[]): Array<[string, string]> {
  if (args.length === 0) {
    const arms = seeds[0]!.runs.map((r) => r.method);
    return arms.slice(1).map((b) => [arms[0]!, b]);
  }
  return args.map((p) => {
    const parts = p.split('-');
    if (parts.length !== 2 || !parts[0] || !parts[1]) throw new Error(`pair '${p}' is not A-B (sides: ${sidesOf(seeds).join(', ')})`);
    return [parts[0], parts[1]];
  });
}
