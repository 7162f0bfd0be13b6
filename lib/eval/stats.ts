// Small statistics for experiment reports: mean, sample standard deviation and the two-sided 95% confidence
// interval of a mean from the Student t distribution (n - 1 degrees of freedom).

/** Two-sided 95% quantiles t_{0.975, df} for df = 1..30 (standard tables). */
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086,
  2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/** t_{0.975, df}: the table up to 30, then the Cornish-Fisher expansion around the normal 1.95996 (error < 1e-3). */
export function tQuantile975(df: number): number {
  if (!Number.isInteger(df) || df < 1) throw new Error(`tQuantile975: degrees of freedom must be an integer >= 1, got ${df}`);
  if (df <= T975.length) return T975[df - 1]!;
  const z = 1.959964;
  return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2);
}

export interface MeanCI {
  n: number;
  mean: number;
  /** Sample standard deviation (n - 1); 0 for n = 1. */
  sd: number;
  /** Half-width of the 95% confidence interval of the mean (NaN for n < 2). */
  half: number;
  lo: number;
  hi: number;
}

export function meanCI(xs: readonly number[]): MeanCI {
  const n = xs.length;
  if (n === 0) throw new Error('meanCI: no values');
  const mean = xs.reduce((s, x) => s + x, 0) / n;
  const sd = n > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1)) : 0;
  const half = n > 1 ? (tQuantile975(n - 1) * sd) / Math.sqrt(n) : NaN;
  return { n, mean, sd, half, lo: mean - half, hi: mean + half };
}

/** "+0.0123 ± 0.0045 [0.0078, 0.0168]" with `digits` decimals. */
export function formatCI(c: MeanCI, digits = 4): string {
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(digits) : '-');
  const sign = c.mean >= 0 ? '+' : '';
  return `${sign}${f(c.mean)} ± ${f(c.half)} [${f(c.lo)}, ${f(c.hi)}]`;
}
