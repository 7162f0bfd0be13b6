// The 95% interval of a mean over runs x photographs when every run (training seed) was evaluated on the same
// photographs: the cells are not independent (a photograph's cells share its difficulty, a run's cells share its
// training), so neither the (run, photograph) pairs nor the photographs alone are the unit. Two-way crossed random
// effects without replication (y = mu + run + photograph + residual), from the ANOVA mean squares:
//   Var(grand mean) = (MS_run + MS_photo - MS_resid) / (R P),
// each variance component floored at 0 (a negative estimate read as none), Satterthwaite degrees of freedom.
// Copies of one run add nothing: R identical rows give exactly that run's t interval over its photographs.
import { tQuantile975 } from './stats.ts';

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
