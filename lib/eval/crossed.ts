// The 95% interval of a mean over runs x photographs when every run (training seed) was evaluated on the same
// photographs: the cells are not independent (a photograph's cells share its difficulty, a run's cells share its
// training), so neither the (run, photograph) pairs nor the photographs alone are the unit. Two-way crossed random
// effects without replication (y = mu + run + photograph + residual), from the ANOVA mean squares:
//   Var(grand mean) = (MS_run + MS_photo - MS_resid) / (R P),
// each variance component floored at 0 (a negative estimate read as none), Satterthwaite degrees of freedom.
// Copies of one run add nothing: R identical rows give exactly that run's t interval over its photographs.
import type { PerSample } from './evaluate.ts';
import { meanCI, tQuantile975 } from './stats.ts';

export interface CrossedCI {
  runs: number;
  photographs: number;
  mean: number;
  /** Standard error of the mean. */
  se: number;
  /** Satterthwaite degrees of freedom, rounded down (at least 1). */
  df: number;
  half: number;
  lo: number;
  hi: number;
  msRun: number;
  msPhoto: number;
  msResid: number;
}

/** cells[r][p]: run r's value on photograph p (the same photographs, in the same order, in every run). */
export function crossedMeanCI(cells: readonly (readonly number[])[]): CrossedCI {
  const R = cells.length;
  const P = cells[0]?.length ?? 0;
  if (R < 2 || P < 2) throw new Error(`crossedMeanCI: needs at least 2 runs and 2 photographs, got ${R} x ${P}`);
  cells.forEach((row, r) => {
    if (row.length !== P) throw new Error(`crossedMeanCI: run ${r} has ${row.length} photographs, run 0 has ${P}`);
    row.forEach((x, p) => {
      if (!Number.isFinite(x)) throw new Error(`crossedMeanCI: run ${r} photograph ${p} is not a finite number (${x})`);
    });
  });
  const runMean = cells.map((row) => row.reduce((s, x) => s + x, 0) / P);
  const photoMean = Array.from({ length: P }, (_, p) => cells.reduce((s, row) => s + row[p]!, 0) / R);
  const mean = runMean.reduce((s, x) => s + x, 0) / R;
  const msRun = (P * runMean.reduce((s, x) => s + (x - mean) ** 2, 0)) / (R - 1);
  const msPhoto = (R * photoMean.reduce((s, x) => s + (x - mean) ** 2, 0)) / (P - 1);
  let sse = 0;
  for (let r = 0; r < R; r++) for (let p = 0; p < P; p++) sse += (cells[r]![p]! - runMean[r]! - photoMean[p]! + mean) ** 2;
  const dfResid = (R - 1) * (P - 1);
  const msResid = sse / dfResid;
  // R P Var = max(MS_run - MS_resid, 0) + max(MS_photo - MS_resid, 0) + MS_resid: a sum of mean squares with
  // coefficients 1, 1, -1 when both components are positive, fewer terms when one is floored.
  const cRun = msRun >= msResid ? 1 : 0;
  const cPhoto = msPhoto >= msResid ? 1 : 0;
  const cResid = 1 - cRun - cPhoto;
  const terms: Array<[number, number]> = [[cRun * msRun, R - 1], [cPhoto * msPhoto, P - 1], [cResid * msResid, dfResid]];
  const total = terms.reduce((s, [t]) => s + t, 0);
  const se = Math.sqrt(total / (R * P));
  const dfExact = total > 0 ? total ** 2 / terms.reduce((s, [t, d]) => s + t ** 2 / d, 0) : R * P - 1;
  const df = Math.max(1, Math.floor(dfExact + 1e-9));
  const half = tQuantile975(df) * se;
  return { runs: R, photographs: P, mean, se, df, half, lo: mean - half, hi: mean + half, msRun, msPhoto, msResid };
}

/** How a difference a - b was pooled over runs, with its 95% interval. */
export interface PooledDifference {
  /** crossed: runs x the photographs common to all; one-run: t over its photographs; over-runs: t over the runs' means. */
  kind: 'crossed' | 'one-run' | 'over-runs';
  ci: { mean: number; half: number; lo: number; hi: number };
  /** Degrees of freedom of the interval (Satterthwaite's for crossed). */
  df: number;
  runs: number;
  /** Photographs the interval is over (crossed: those in every run). */
  photographs: number;
  /** Distinct photographs in any run, and those in every run. */
  allPhotographs: number;
  inEveryRun: number;
  /** Draws the interval's photographs hold, over all runs. */
  draws: number;
}

/**
 * A crossed row needs most photographs in every run: a row whose photographs differ a little between runs (a level
 * one photograph drew in no type in one run) uses the photographs common to all runs when they are at least this
 * share of each run's; otherwise (another split per run, eval.draws one) the runs' photographs are independent
 * samples and the t interval over the runs' row means is the right one.
 */
export const COMMON_SHARE = 0.9;

/**
 * a - b (`metric`) pooled over runs, each run a pair of evaluations scored on the same draws (a demo's GRPO and
 * SFT, a sweep seed's two arms); optionally only the draws of one type or level row. Per run, each photograph's
 * mean difference over its draws; then one run: the t interval over its photographs; several on (nearly) the same
 * photographs: the crossed runs x photographs interval (a photograph seen by three runs is one photograph, and the
 * spread between training seeds counts); else the t interval over the runs' means. null when no run holds a draw
 * of the row.
 */
export function pooledDifference(
  pairs: ReadonlyArray<{ a: PerSample; b: PerSample }>,
  metric: 'reward' | 'ssim' | 'psnr',
  row?: { key: 'type' | 'level'; name: string },
): PooledDifference | null {
  const perRun = pairs.map(({ a, b }, r) => {
    if (a.id.length !== b.id.length || a.id.some((id, i) => id !== b.id[i] || a.type[i] !== b.type[i] || a.level[i] !== b.level[i])) {
      throw new Error(`pooledDifference: run ${r}'s two evaluations were not scored on the same draws in the same order`);
    }
    const sum = new Map<string, { s: number; n: number }>();
    a.id.forEach((id, i) => {
      if (row && a[row.key][i] !== row.name) return;
      const e = sum.get(id) ?? { s: 0, n: 0 };
      e.s += a[metric][i]! - b[metric][i]!;
      e.n++;
      sum.set(id, e);
    });
    return new Map([...sum].map(([id, e]) => [id, { mean: e.s / e.n, n: e.n }]));
  }).filter((m) => m.size > 0);
  if (perRun.length === 0) return null;
  const all = new Set(perRun.flatMap((m) => [...m.keys()]));
  const common = [...all].filter((id) => perRun.every((m) => m.has(id))).sort();
  const drawsIn = (ids: readonly string[]) => perRun.reduce((s, m) => s + ids.reduce((t, id) => t + (m.get(id)?.n ?? 0), 0), 0);
  const base = { runs: perRun.length, allPhotographs: all.size, inEveryRun: common.length };
  if (perRun.length === 1) {
    const ci = meanCI([...perRun[0]!.values()].map((x) => x.mean));
    return { kind: 'one-run', ci, df: ci.n - 1, photographs: all.size, draws: drawsIn([...all]), ...base };
  }
  if (common.length >= 2 && perRun.every((m) => common.length >= COMMON_SHARE * m.size)) {
    const ci = crossedMeanCI(perRun.map((m) => common.map((id) => m.get(id)!.mean)));
    return { kind: 'crossed', ci, df: ci.df, photographs: common.length, draws: drawsIn(common), ...base };
  }
  const ci = meanCI(perRun.map((m) => [...m.values()].reduce((s, x) => s + x.mean, 0) / m.size));
  return { kind: 'over-runs', ci, df: ci.n - 1, photographs: all.size, draws: drawsIn([...all]), ...base };
}
