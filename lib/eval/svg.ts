// Inline SVG charts for the self-contained HTML reports (eval, sweep): grouped bars and line plots, with axes,
// ticks and a legend, no external assets. Every function returns an <svg> element as a string.

export const PALETTE = ['#8c8c8c', '#4e79a7', '#e15759', '#59a14f', '#f28e2b', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f'];

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** About five round tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** Tick labels with as many decimals as the tick spacing needs (0.8383 and 0.8384 stay apart). */
function tickLabels(vs: number[]): string[] {
  if (vs.length < 2) return vs.map(fmt);
  const step = Math.abs(vs[1]! - vs[0]!);
  const a = Math.max(...vs.map(Math.abs));
  if (a >= 1e5 || (a !== 0 && a < 1e-3)) return vs.map((v) => v.toExponential(2));
  const decimals = Math.min(8, Math.max(0, Math.ceil(-Math.log10(step) + 1e-9) + (step / 10 ** Math.floor(Math.log10(step)) === 2.5 ? 1 : 0)));
  return vs.map((v) => v.toFixed(decimals));
}

function fmt(v: number): string {
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(1) : String(Number(v.toPrecision(4)));
}

/** [lo, hi] padded a little, from finite values (bars also include `base`). */
function range(values: number[], base?: number): [number, number] {
  const v = values.filter(Number.isFinite);
  if (base !== undefined) v.push(base);
  if (v.length === 0) return [0, 1];
  let lo = Math.min(...v);
  let hi = Math.max(...v);
  if (hi === lo) {
    lo -= Math.abs(lo) * 0.05 || 0.5;
    hi += Math.abs(hi) * 0.05 || 0.5;
  }
  const pad = (hi - lo) * 0.06;
  return [base !== undefined && lo === base ? lo : lo - pad, hi + pad];
}

function legend(names: string[], x: number, y: number): string {
  return names
    .map((n, i) => `<g transform="translate(${x + i * 130},${y})"><rect width="12" height="12" fill="${PALETTE[i % PALETTE.length]}"/><text x="16" y="10" font-size="11">${esc(n)}</text></g>`)
    .join('');
}

export interface BarChartOptions {
  title: string;
  /** Category labels along the x axis (e.g. corruption types). */
  categories: string[];
  /** One series per policy: values per category (NaN: no bar). */
  series: Array<{ name: string; values: number[] }>;
  width?: number;
  height?: number;
  /** Bars start here (default: a little below the smallest value, so small differences show). */
  base?: number;
}

/** Title, legend and horizontal grid lines with y labels: the frame both chart kinds share. */
function chartFrame(title: string, names: string[], lo: number, hi: number, y: (v: number) => number, left: number, right: number): string[] {
  const parts: string[] = [];
  parts.push(`<text x="${left}" y="16" font-size="13" font-weight="bold">${esc(title)}</text>`);
  parts.push(legend(names, left, 22));
  const yt = ticks(lo, hi);
  tickLabels(yt).forEach((label, i) => {
    const t = yt[i]!;
    parts.push(`<line x1="${left}" x2="${right}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#ddd"/>`);
    parts.push(`<text x="${left - 4}" y="${(y(t) + 4).toFixed(1)}" font-size="10" text-anchor="end">${label}</text>`);
  });
  return parts;
}

export function barChart(o: BarChartOptions): string {
  const W = o.width ?? Math.max(480, 60 + o.categories.length * (12 * o.series.length + 18));
  const H = o.height ?? 300;
  const L = 56;
  const R = 12;
  const T = 40;
  const B = 96;
  const all = o.series.flatMap((s) => s.values);
  const [lo, hi] = range(all, o.base);
  const y = (v: number) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  const cw = (W - L - R) / Math.max(1, o.categories.length);
  const bw = Math.max(2, (cw - 8) / Math.max(1, o.series.length));
  const parts = chartFrame(o.title, o.series.map((s) => s.name), lo, hi, y, L, W - R);
  o.categories.forEach((c, i) => {
    const x0 = L + i * cw + 4;
    o.series.forEach((s, j) => {
      const v = s.values[i];
      if (v === undefined || !Number.isFinite(v)) return;
      const top = Math.min(y(v), y(lo));
      const h = Math.abs(y(lo) - y(v));
      parts.push(`<rect class="bar" x="${(x0 + j * bw).toFixed(1)}" y="${top.toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${Math.max(0.5, h).toFixed(1)}" fill="${PALETTE[j % PALETTE.length]}"><title>${esc(`${s.name} · ${c}: ${fmt(v)}`)}</title></rect>`);
    });
    const lx = x0 + (cw - 8) / 2;
    parts.push(`<text x="${lx.toFixed(1)}" y="${H - B + 12}" font-size="10" text-anchor="end" transform="rotate(-40 ${lx.toFixed(1)} ${H - B + 12})">${esc(c)}</text>`);
  });
  parts.push(`<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#333"/><line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#333"/>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">${parts.join('')}</svg>`;
}

export interface LineChartOptions {
  title: string;
  series: Array<{ name: string; points: Array<[number, number]> }>;
  xLabel?: string;
  width?: number;
  height?: number;
}

/** Line plot; series with many points are drawn as they are (callers smooth or thin them). */
export function lineChart(o: LineChartOptions): string {
  const W = o.width ?? 560;
  const H = o.height ?? 280;
  const L = 60;
  const R = 12;
  const T = 40;
  const B = 36;
  const xs = o.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = o.series.flatMap((s) => s.points.map((p) => p[1]));
  const [x0, x1] = xs.length ? [Math.min(...xs), Math.max(...xs) === Math.min(...xs) ? Math.min(...xs) + 1 : Math.max(...xs)] : [0, 1];
  const [lo, hi] = range(ys);
  const px = (v: number) => L + ((W - L - R) * (v - x0)) / (x1 - x0);
  const py = (v: number) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  const parts = chartFrame(o.title, o.series.map((s) => s.name), lo, hi, py, L, W - R);
  for (const t of ticks(x0, x1)) parts.push(`<text x="${px(t).toFixed(1)}" y="${H - B + 14}" font-size="10" text-anchor="middle">${fmt(t)}</text>`);
  if (o.xLabel) parts.push(`<text x="${(L + W - R) / 2}" y="${H - 4}" font-size="11" text-anchor="middle">${esc(o.xLabel)}</text>`);
  o.series.forEach((s, j) => {
    const pts = s.points.filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]));
    if (pts.length === 0) return;
    const d = pts.map((p, i) => `${i ? 'L' : 'M'}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join('');
    parts.push(`<path class="series" d="${d}" fill="none" stroke="${PALETTE[j % PALETTE.length]}" stroke-width="1.5"><title>${esc(s.name)}</title></path>`);
  });
  parts.push(`<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#333"/><line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#333"/>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">${parts.join('')}</svg>`;
}

/** Moving average over `window` points (for noisy per-batch curves). */
export function smooth(points: Array<[number, number]>, window: number): Array<[number, number]> {
  if (window <= 1) return points;
  const out: Array<[number, number]> = [];
  let sum = 0;
  for (let i = 0; i < points.length; i++) {
    sum += points[i]![1];
    if (i >= window) sum -= points[i - window]![1];
    out.push([points[i]![0], sum / Math.min(i + 1, window)]);
  }
  return out;
}
