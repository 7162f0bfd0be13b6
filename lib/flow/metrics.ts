// Per-step training metrics of the flow family: the Flow-GRPO graph reports per row (one trajectory's
// one trained step); grouping rows by step index shows where in the trajectory ratios drift and clip
// (log-prob errors grow at low-noise steps) and where the policy moves away from the reference.

export interface StepMetrics {
  /** The step's index in the sampling trajectory. */
  step: number;
  rows: number;
  ratio: number;
  clipFraction: number;
  kl: number;
}

/** Means of the per-row outputs (ratio, clip_fraction_rows, kl_rows) for each step index, in step order. */
export function metricsByStep(stepOfRow: ArrayLike<number>, rows: { ratio: ArrayLike<number>; clipFractionRows: ArrayLike<number>; klRows: ArrayLike<number> }): StepMetrics[] {
  const n = stepOfRow.length;
  for (const [name, v] of Object.entries(rows)) {
    if (v.length !== n) throw new Error(`flow metrics: ${name} has ${v.length} values for ${n} rows`);
  }
  const acc = new Map<number, StepMetrics>();
  for (let i = 0; i < n; i++) {
    const k = stepOfRow[i];
    const m = acc.get(k) ?? { step: k, rows: 0, ratio: 0, clipFraction: 0, kl: 0 };
    m.rows++;
    m.ratio += rows.ratio[i];
    m.clipFraction += rows.clipFractionRows[i];
    m.kl += rows.klRows[i];
    acc.set(k, m);
  }
  return [...acc.values()]
    .sort((a, b) => a.step - b.step)
    .map((m) => ({ ...m, ratio: m.ratio / m.rows, clipFraction: m.clipFraction / m.rows, kl: m.kl / m.rows }));
}
