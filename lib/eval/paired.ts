// Paired intervals between two policies of one evaluation, per corruption type and level: per row, the mean over
// each image's draws in the row of (a - b), then the 95% Student t interval over the row's images. Level rows hold
// several draws of one image (eval.draws every-type), which are not independent, hence the image as the unit.
// The interval says how well the row's images pin down the row's mean for these two trained policies; it does
// not include the spread between training seeds.
import type { EvalReport, PerSample } from './evaluate.ts';
import { meanCI, type MeanCI } from './stats.ts';

export interface PairedRow {
  /** Distinct images in the row. */
  images: number;
  /** Draws (image, corruption) in the row. */
  draws: number;
  /** Over images: mean of (a - b) and its 95% t interval (half NaN for one image). */
  ci: MeanCI;
}

export interface PairedRows {
  overall: PairedRow;
  byType: Record<string, PairedRow>;
  byLevel: Record<string, PairedRow>;
}

function sameDraws(a: PerSample, b: PerSample): boolean {
  if (a.id.length !== b.id.length) return false;
  for (let i = 0; i < a.id.length; i++) if (a.id[i] !== b.id[i] || a.type[i] !== b.type[i] || a.level[i] !== b.level[i]) return false;
  return true;
}

/**
 * The row of draws `idx`: per unit (units[i] names draw i's image, or a (run, image) pair when runs are pooled),
 * the mean of `diff` over its draws in the row, then the t interval over the units.
 */
export function pairedRow(units: readonly string[], diff: readonly number[], idx: readonly number[]): PairedRow {
  const sum = new Map<string, { s: number; n: number }>();
  for (const i of idx) {
    const e = sum.get(units[i]!) ?? { s: 0, n: 0 };
    e.s += diff[i]!;
    e.n++;
    sum.set(units[i]!, e);
  }
  const means = [...sum.values()].map((e) => e.s / e.n);
  return { images: means.length, draws: idx.length, ci: meanCI(means) };
}

/**
 * a - b per row (reward by default), from the reports' perSample; throws when either lacks it or the two were
 * not scored on the same draws in the same order.
 */
export function pairedRows(a: EvalReport, b: EvalReport, metric: 'reward' | 'ssim' | 'psnr' = 'reward'): PairedRows {
  const pa = a.perSample, pb = b.perSample;
  if (!pa || !pb) throw new Error('pairedRows: a report has no perSample (written before round 7?)');
  if (!sameDraws(pa, pb)) throw new Error('pairedRows: the two reports were not scored on the same draws in the same order');
  const diff = pa[metric].map((v, i) => v - pb[metric][i]!);
  const all = diff.map((_, i) => i);
  const group = (key: 'type' | 'level'): Record<string, PairedRow> => {
    const m = new Map<string, number[]>();
    pa[key].forEach((k, i) => {
      const l = m.get(k);
      if (l) l.push(i);
      else m.set(k, [i]);
    });
    return Object.fromEntries([...m.entries()].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)).map(([k, idx]) => [k, pairedRow(pa.id, diff, idx)]));
  };
  return { overall: pairedRow(pa.id, diff, all), byType: group('type'), byLevel: group('level') };
}

/** "-0.0128 [-0.0200, -0.0056]" (mean and 95% interval; "-0.0128 [-]" for one image); any row with such an interval. */
export function formatPaired(r: { ci: Pick<MeanCI, 'mean' | 'half' | 'lo' | 'hi'> }, digits = 4): string {
  const f = (x: number) => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${x.toFixed(digits)}` : '-');
  return Number.isFinite(r.ci.half) ? `${f(r.ci.mean)} [${f(r.ci.lo)}, ${f(r.ci.hi)}]` : `${f(r.ci.mean)} [-]`;
}
