// The evaluation report of one checkpoint (`recovery-grpo eval`): eval.json (machine-readable), eval.md
// (Markdown tables) and report.html (self-contained: the image grid as an embedded PNG, per-type and
// per-level bars as inline SVG; no external asset, no script).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EvalDraws } from '../data/eval-draws.ts';
import type { EvalReport, Scores } from './evaluate.ts';
import { formatPaired, pairedRows, type PairedRows } from './paired.ts';
import { barChart, esc } from './svg.ts';

/** Where the numbers came from. */
export interface EvalSources {
  checkpoint: { path: string; run_id: string; version: number; digest: string };
  /** The reference (SFT) checkpoint, or null with the reason in `notes`. */
  reference: { path: string; run_id: string; version: number; digest: string; found: 'given' | 'beside the checkpoint' } | null;
  config: string;
  config_hash: string;
  /** 'eval split' or the folder of clean images given with --data. */
  data: string;
  /** Images evaluated. */
  samples: number;
  /** (image, corruption) draws scored: samples x the mix's types under eval.draws every-type (absent before round 7). */
  draws?: number;
  draws_mode?: EvalDraws;
  encoder: string;
  seed: number;
  notes: string[];
}

export interface EvalJson {
  sources: EvalSources;
  /** The policy mean (the recovered image a user gets). */
  policy: EvalReport;
  /** Sampled actions: mean + sigma * noise, noise fixed per sample. */
  policy_sampled: EvalReport;
  /** The reference (SFT) checkpoint's mean; null when none was given or found. */
  reference: EvalReport | null;
  /** The corrupted image returned unchanged. */
  identity: EvalReport;
}

const METRICS = ['reward', 'ssim', 'clip_cos', 'psnr'] as const;
const LABEL: Record<(typeof METRICS)[number], string> = { reward: 'reward', ssim: 'SSIM', clip_cos: 'embedding cos', psnr: 'PSNR (dB)' };

function f(m: (typeof METRICS)[number], v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  return m === 'psnr' ? v.toFixed(2) : v.toFixed(4);
}

/** The policies in the order tables show them. */
function columns(e: EvalJson): Array<[string, EvalReport]> {
  const c: Array<[string, EvalReport]> = [['identity', e.identity]];
  if (e.reference) c.push(['reference', e.reference]);
  c.push(['policy', e.policy], ['policy_sampled', e.policy_sampled]);
  return c;
}

function mdTable(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

type PairedMetric = 'reward' | 'ssim' | 'psnr';
const isPaired = (m: (typeof METRICS)[number]): m is PairedMetric => m !== 'clip_cos';

/** policy - identity per row with its 95% interval over images, or null for reports without per-draw scores. */
function paired(e: EvalJson, metric: PairedMetric): PairedRows | null {
  return e.policy.perSample && e.identity.perSample ? pairedRows(e.policy, e.identity, metric) : null;
}

function groupHeader(e: EvalJson, title: string, metric: (typeof METRICS)[number]): string[] {
  return [title, 'images', 'draws', ...columns(e).map(([n]) => n), ...(isPaired(metric) ? ['policy - identity [95% CI over images]'] : [])];
}

/** One row per type or level: images and draws in it, each policy's mean and (not for clip_cos) policy - identity with its interval. */
function groupRows(e: EvalJson, key: 'byType' | 'byLevel', metric: (typeof METRICS)[number]): string[][] {
  const cols = columns(e);
  const names = Object.keys(e.policy[key]);
  const p = isPaired(metric) ? paired(e, metric) : null;
  const digits = metric === 'psnr' ? 2 : 4;
  return names.map((n) => {
    const row = p?.[key][n];
    const count = String(e.policy[key][n]?.count ?? 0);
    return [n, row ? String(row.images) : '-', row ? String(row.draws) : count, ...cols.map(([, r]) => f(metric, r[key][n]?.[metric])),
      ...(isPaired(metric) ? [row ? formatPaired(row, digits) : '-'] : [])];
  });
}

/** A sentence on how the images were drawn, and policy - identity overall with its interval. */
function drawsLine(e: EvalJson): string {
  const s = e.sources;
  const how = s.draws_mode === 'every-type' ? `${s.draws} draws: each image once per corruption type, levels drawn from (seed, image, type) (eval.draws every-type)`
    : s.draws_mode === 'one' ? 'one corruption draw per image (eval.draws one)' : 'one corruption draw per image';
  const p = paired(e, 'reward');
  return `${how}${p ? `; reward policy - identity ${formatPaired(p.overall)} (95% paired t interval over ${p.overall.images} images)` : ''}`;
}

export function renderMarkdown(e: EvalJson): string {
  const s = e.sources;
  const cols = columns(e);
  const out: string[] = [];
  out.push(`# Evaluation of ${s.checkpoint.path}`, '');
  out.push(`- checkpoint: run \`${s.checkpoint.run_id}\`, version ${s.checkpoint.version}, sha256 \`${s.checkpoint.digest.slice(0, 16)}…\``);
  out.push(s.reference ? `- reference (SFT): ${s.reference.path} (version ${s.reference.version}, ${s.reference.found})` : '- reference (SFT): none');
  out.push(`- data: ${s.data}, ${s.samples} images; seed ${s.seed}; config: ${s.config} (hash ${s.config_hash.slice(0, 12)})`);
  out.push(`- draws: ${drawsLine(e)}`);
  out.push(`- semantic reward encoder: \`${s.encoder}\``);
  for (const n of s.notes) out.push(`- note: ${n}`);
  out.push('', '## Overall', '');
  out.push(mdTable(['policy', ...METRICS.map((m) => LABEL[m])], cols.map(([n, r]) => [n, ...METRICS.map((m) => f(m, r[m]))])));
  for (const [key, title] of [['byType', 'corruption type'], ['byLevel', 'corruption level']] as const) {
    for (const m of METRICS) {
      out.push('', `## ${LABEL[m]} by ${title}`, '');
      out.push(mdTable(groupHeader(e, title, m), groupRows(e, key, m)));
    }
  }
  return `${out.join('\n')}\n`;
}

function htmlTable(header: string[], rows: string[][]): string {
  return `<table><thead><tr>${header.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c, i) => (i === 0 ? `<th>${esc(c)}</th>` : `<td>${esc(c)}</td>`)).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

function bars(e: EvalJson, key: 'byType' | 'byLevel', metric: (typeof METRICS)[number], title: string): string {
  const categories = Object.keys(e.policy[key]);
  const series = columns(e)
    .filter(([n]) => n !== 'policy_sampled')
    .map(([name, r]) => ({ name, values: categories.map((c) => (r[key][c] as Scores | undefined)?.[metric] ?? NaN) }));
  return barChart({ title, categories, series });
}

const CSS = `body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}table{border-collapse:collapse;margin:8px 0 20px}
th,td{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}thead th{background:#f3f3f3}tbody th{text-align:left;font-weight:normal}
.charts{display:flex;flex-wrap:wrap;gap:16px}.grid img{image-rendering:pixelated;max-width:100%}code{background:#f3f3f3;padding:0 3px}`;

/** report.html: everything inline (the grid as a data: URL). */
export function renderHtml(e: EvalJson, gridPng: Uint8Array | null): string {
  const s = e.sources;
  const cols = columns(e);
  const parts: string[] = [];
  parts.push(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(`Evaluation: ${s.checkpoint.run_id} v${s.checkpoint.version}`)}</title><style>${CSS}</style></head><body>`);
  parts.push(`<h1>Evaluation of ${esc(s.checkpoint.path)}</h1><ul>`);
  parts.push(`<li>checkpoint: run <code>${esc(s.checkpoint.run_id)}</code>, version ${s.checkpoint.version}, sha256 <code>${esc(s.checkpoint.digest.slice(0, 16))}…</code></li>`);
  parts.push(`<li>reference (SFT): ${s.reference ? `${esc(s.reference.path)} (version ${s.reference.version}, ${esc(s.reference.found)})` : 'none'}</li>`);
  parts.push(`<li>data: ${esc(s.data)}, ${s.samples} images, seed ${s.seed}; config ${esc(s.config)}</li>`);
  parts.push(`<li>draws: ${esc(drawsLine(e))}</li>`);
  parts.push(`<li>semantic reward encoder: <code>${esc(s.encoder)}</code></li>`);
  for (const n of s.notes) parts.push(`<li>note: ${esc(n)}</li>`);
  parts.push('</ul><h2>Overall</h2>');
  parts.push(htmlTable(['policy', ...METRICS.map((m) => LABEL[m])], cols.map(([n, r]) => [n, ...METRICS.map((m) => f(m, r[m]))])));
  if (gridPng) {
    const header = ['corrupted', ...(e.reference ? ['reference'] : []), 'policy', 'clean'].join(' | ');
    parts.push(`<h2>Recoveries</h2><p>${esc(header)}</p><div class="grid"><img id="grid" alt="${esc(header)}" src="data:image/png;base64,${Buffer.from(gridPng).toString('base64')}"></div>`);
  }
  parts.push('<h2>By corruption type</h2><div class="charts">');
  parts.push(bars(e, 'byType', 'reward', 'reward by corruption type'), bars(e, 'byType', 'ssim', 'SSIM by corruption type'), bars(e, 'byType', 'clip_cos', 'embedding cosine by corruption type'));
  parts.push('</div><h2>By corruption level</h2><div class="charts">');
  parts.push(bars(e, 'byLevel', 'reward', 'reward by level'), bars(e, 'byLevel', 'ssim', 'SSIM by level'), bars(e, 'byLevel', 'clip_cos', 'embedding cosine by level'));
  parts.push('</div><h2>Tables</h2>');
  for (const [key, title] of [['byType', 'corruption type'], ['byLevel', 'corruption level']] as const) {
    for (const m of METRICS) {
      parts.push(`<h3>${esc(LABEL[m])} by ${title}</h3>`);
      parts.push(htmlTable(groupHeader(e, title, m), groupRows(e, key, m)));
    }
  }
  parts.push('</body></html>');
  return parts.join('\n');
}

/** Writes DIR/eval.json, DIR/eval.md, DIR/report.html and (when given) DIR/grid.png. */
export async function writeEvalReport(dir: string, e: EvalJson, gridPng: Uint8Array | null): Promise<{ json: string; md: string; html: string; grid?: string }> {
  await mkdir(dir, { recursive: true });
  const paths = { json: join(dir, 'eval.json'), md: join(dir, 'eval.md'), html: join(dir, 'report.html'), ...(gridPng ? { grid: join(dir, 'grid.png') } : {}) };
  await writeFile(paths.json, `${JSON.stringify(e, null, 2)}\n`);
  await writeFile(paths.md, renderMarkdown(e));
  await writeFile(paths.html, renderHtml(e, gridPng));
  if (gridPng) await writeFile(paths.grid!, gridPng);
  return paths;
}
