// Sweeps (`recovery-grpo sweep`): one training run per value of one or more config keys (a grid for several
// keys), run here one after another, then one comparison report: OUT/sweep.md and OUT/sweep.html (the final
// evaluations per value in a table, and the reward and its components over training per value as inline SVG).
//
// Engines: `local` (default) is the real pipeline, runLocal: nats-server and the four roles as processes, with
// the orchestrator's event log; `single` is runSingleProcess (same graphs and math in one process, much faster).
// Both leave the same files per run in OUT/<run>/: summary.json (evaluations of identity, the warm start and the
// final policy) and events.jsonl (a `progress` line per trained batch: reward and components). For the cluster,
// `--k8s` renders one Kubernetes run per value with scripts/k8s-ablation.ts (the Kubernetes engineer's renderer).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import YAML from 'yaml';
import { loadConfig } from '../config/index.ts';
import { configEvalSamples, evaluate } from '../eval/evaluate.ts';
import type { EvalJson } from '../eval/report.ts';
import type { Summary } from '../local/local-run.ts';
import { barChart, esc, lineChart, smooth } from '../eval/svg.ts';
import { slug, splitValues } from './sweep-values.ts';
import { readEvents } from '../log/event-log.ts';

export interface SweepAxis {
  key: string;
  values: string[];
}

export interface PlannedSweepRun {
  /** Folder name under OUT (and run id suffix): clip-0p1. */
  name: string;
  /** For people: clip=0.1. */
  label: string;
  /** The swept key=value overrides of this run. */
  overrides: string[];
}

/** `--set key=v1,v2` arguments: those with several values are sweep axes, the others fixed overrides. */
export function parseSets(sets: string[]): { axes: SweepAxis[]; fixed: string[] } {
  const axes: SweepAxis[] = [];
  const fixed: string[] = [];
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new Error(`sweep: --set ${JSON.stringify(s)} must look like key.path=v1,v2,...`);
    const key = s.slice(0, eq).trim();
    const values = splitValues(s.slice(eq + 1));
    if (values.some((v) => v === '')) throw new Error(`sweep: --set ${key}: empty value in ${JSON.stringify(s.slice(eq + 1))}`);
    if (new Set(values).size !== values.length) throw new Error(`sweep: --set ${key}: a value is repeated`);
    if (values.length === 1) fixed.push(`${key}=${values[0]}`);
    else axes.push({ key, values });
  }
  const keys = [...axes.map((a) => a.key), ...fixed.map((f) => f.slice(0, f.indexOf('=')))];
  if (new Set(keys).size !== keys.length) throw new Error('sweep: a key is given twice');
  return { axes, fixed };
}

/** Every combination of the axes (the first axis varies slowest). */
export function planSweep(axes: SweepAxis[]): PlannedSweepRun[] {
  if (axes.length === 0) throw new Error('sweep: nothing to sweep: give --set key=v1,v2,... (e.g. reward.weights.clip=0,0.1,0.2,0.5,1)');
  const lasts = axes.map((a) => a.key.split('.').pop()!);
  const short = (i: number) => (lasts.filter((l) => l === lasts[i]).length > 1 ? axes[i]!.key : lasts[i]!);
  let grid: Array<Array<{ i: number; value: string }>> = [[]];
  axes.forEach((a, i) => {
    grid = grid.flatMap((combo) => a.values.map((value) => [...combo, { i, value }]));
  });
  return grid.map((combo) => ({
    name: combo.map((c) => `${slug(short(c.i))}-${slug(c.value)}`).join('-'),
    label: combo.map((c) => `${short(c.i)}=${c.value}`).join(' '),
    overrides: combo.map((c) => `${axes[c.i]!.key}=${c.value}`),
  }));
}

export interface SweepOptions {
  configFile?: string;
  sets: string[];
  out: string;
  engine?: 'local' | 'single';
  seed?: number;
  log?: (line: string) => void;
}

/** What a finished run of a sweep left behind, as the report reads it. */
export interface SweepRunResult {
  name: string;
  label: string;
  overrides: string[];
  /** The local run's summary fields (the single-process engine fills the same ones). */
  summary: Pick<Summary, 'run_id' | 'steps' | 'sft_steps' | 'reward_before' | 'reward_after' | 'identity_reward' | 'before' | 'after' | 'identity' | 'wall_seconds' | 'encoder'> & {
    engine?: string;
  };
  /** Per GRPO step: mean reward and components of its actions. */
  curve: Array<{ step: number; reward: number; components: Record<string, number> }>;
  /** Periodic evaluations during training (local engine with eval.everyVersions). */
  evals: Array<{ version: number; reward: number }>;
}

/** The run's evaluations: summary.json (a local or single-process run), else eval.json (`recovery-grpo eval` of its final checkpoint). */
function readSummary(dir: string): SweepRunResult['summary'] {
  if (existsSync(join(dir, 'summary.json'))) return JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as SweepRunResult['summary'];
  const e = JSON.parse(readFileSync(join(dir, 'eval.json'), 'utf8')) as EvalJson;
  const before = e.reference ?? e.identity;
  return {
    run_id: e.sources.checkpoint.run_id,
    steps: NaN,
    sft_steps: e.sources.reference?.version ?? 0,
    reward_before: before.reward,
    reward_after: e.policy.reward,
    identity_reward: e.identity.reward,
    before,
    after: e.policy,
    identity: e.identity,
    wall_seconds: NaN,
    encoder: e.sources.encoder,
    engine: 'eval.json',
  };
}

const hasResult = (dir: string) => existsSync(join(dir, 'summary.json')) || existsSync(join(dir, 'eval.json'));

/** Reads OUT/<run>/summary.json (or eval.json) and events.jsonl. */
export function readSweepRun(dir: string, planned: Omit<PlannedSweepRun, 'name'> & { name: string }): SweepRunResult {
  const summary = readSummary(dir);
  const curve: SweepRunResult['curve'] = [];
  const evals: SweepRunResult['evals'] = [];
  // A restarted orchestrator may report a batch twice: the last report wins.
  const bySeq = new Map<number, SweepRunResult['curve'][number]>();
  for (const e of readEvents(join(dir, 'events.jsonl'))) {
    if (e.type === 'progress' && e.phase === 'grpo' && typeof e.seq === 'number' && typeof e.reward === 'number' && Number.isFinite(e.reward)) {
      bySeq.set(e.seq, { step: e.seq - summary.sft_steps, reward: e.reward, components: (e.components ?? {}) as Record<string, number> });
    }
    const policy = e.policy as { reward: number } | undefined;
    if (e.type === 'eval' && policy && typeof e.version === 'number') evals.push({ version: e.version, reward: policy.reward });
  }
  curve.push(...[...bySeq.values()].sort((a, b) => a.step - b.step));
  return { ...planned, summary, curve, evals };
}

async function runSingle(o: SweepOptions, run: PlannedSweepRun, dir: string, fixed: string[]): Promise<void> {
  const { runSingleProcess } = await import('../local/single-process.ts');
  const t0 = Date.now();
  const config = loadConfig(o.configFile, [...fixed, ...run.overrides, ...(o.seed !== undefined ? [`run.seed=${o.seed}`] : []), `run.id=sweep-${run.name}`, `run.outDir=${dir}`]);
  await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const events = join(dir, 'events.jsonl');
  await writeFile(events, '');
  const lines: string[] = [];
  const r = await runSingleProcess(config, {
    log: (l) => o.log?.(`[${run.label}] ${l}`),
    onStep: (s) => lines.push(JSON.stringify({ t: Date.now(), type: 'progress', seq: config.sft.steps + s.step, phase: 'grpo', version: config.sft.steps + s.step, loss: s.loss, reward: s.reward, components: s.components, kl: s.kl, clip_fraction: s.clipFraction })),
  });
  await appendFile(events, lines.map((l) => `${l}\n`).join(''));
  const samples = await configEvalSamples(config);
  const ev = await evaluate(config, samples, { identity: { kind: 'identity' }, before: { kind: 'mean', params: r.sftParams }, after: { kind: 'mean', params: r.params } }, { keep: [] });
  const summary: SweepRunResult['summary'] = {
    run_id: config.run.id,
    steps: config.grpo.steps,
    sft_steps: config.sft.steps,
    reward_before: ev.reports.before!.reward,
    reward_after: ev.reports.after!.reward,
    identity_reward: ev.reports.identity!.reward,
    before: ev.reports.before!,
    after: ev.reports.after!,
    identity: ev.reports.identity!,
    wall_seconds: (Date.now() - t0) / 1000,
    encoder: ev.encoder,
    engine: 'single',
  };
  await writeFile(join(dir, 'summary.json'), JSON.stringify(summary, null, 2));
}

/** Runs every value here, one after another (a finished run, with its summary.json, is not run again), then writes the report. */
export async function runSweep(o: SweepOptions): Promise<{ runs: SweepRunResult[]; md: string; html: string }> {
  const log = o.log ?? ((l: string) => console.log(l));
  const { axes, fixed } = parseSets(o.sets);
  const plan = planSweep(axes);
  const out = resolve(o.out);
  // Validate every combination before the first (long) run starts, and before anything is written.
  for (const r of plan) loadConfig(o.configFile, [...fixed, ...r.overrides]);
  await mkdir(out, { recursive: true });
  const engine = o.engine ?? 'local';
  await writeFile(join(out, 'sweep.json'), JSON.stringify({ config: o.configFile ?? null, fixed, axes, engine, seed: o.seed ?? null, runs: plan }, null, 2));
  const results: SweepRunResult[] = [];
  for (const [i, r] of plan.entries()) {
    const dir = join(out, r.name);
    if (existsSync(join(dir, 'summary.json'))) {
      log(`[sweep] ${i + 1}/${plan.length} ${r.label}: done before, reusing ${dir}`);
    } else {
      log(`[sweep] ${i + 1}/${plan.length} ${r.label} (${engine} engine)`);
      await mkdir(dir, { recursive: true });
      if (engine === 'single') await runSingle(o, r, dir, fixed);
      else {
        const { runLocal } = await import('../local/local-run.ts');
        await runLocal({ out: dir, seed: o.seed, configFile: o.configFile, overrides: [...fixed, ...r.overrides, `run.id=sweep-${r.name}-${Date.now().toString(36)}`], log: (l) => log(`[${r.label}] ${l}`) });
      }
    }
    results.push(readSweepRun(dir, r));
  }
  const written = await writeSweepReport(out, results, { engine, fixed, configFile: o.configFile });
  return { runs: results, ...written };
}

/** Rebuilds the report from a sweep folder (OUT/sweep.json and the run folders), e.g. after runs finished elsewhere. */
export async function reportFromFolder(dir: string): Promise<{ runs: SweepRunResult[]; md: string; html: string }> {
  const out = resolve(dir);
  const meta = existsSync(join(out, 'sweep.json')) ? (JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8')) as { runs: PlannedSweepRun[]; engine: string; fixed: string[]; config: string | null }) : null;
  const plan: PlannedSweepRun[] = meta?.runs ?? readdirSync(out, { withFileTypes: true }).filter((d) => d.isDirectory() && hasResult(join(out, d.name))).map((d) => ({ name: d.name, label: d.name, overrides: [] }));
  const runs = plan.filter((r) => hasResult(join(out, r.name))).map((r) => readSweepRun(join(out, r.name), r));
  if (runs.length === 0) throw new Error(`sweep --report ${dir}: no run folder with a summary.json or eval.json`);
  return { runs, ...(await writeSweepReport(out, runs, { engine: meta?.engine ?? 'unknown', fixed: meta?.fixed ?? [], configFile: meta?.config ?? undefined })) };
}

const f4 = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : '-');
const sg = (x: number) => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${x.toFixed(4)}` : '-');

function tableRows(runs: SweepRunResult[]): string[][] {
  return runs.map((r) => {
    const s = r.summary;
    return [
      r.label,
      String(s.steps),
      f4(s.identity_reward),
      f4(s.reward_before),
      f4(s.reward_after),
      sg(s.reward_after - s.reward_before),
      `${f4(s.before.ssim)} → ${f4(s.after.ssim)}`,
      `${f4(s.before.clip_cos)} → ${f4(s.after.clip_cos)}`,
      `${s.before.psnr.toFixed(2)} → ${s.after.psnr.toFixed(2)}`,
      s.wall_seconds.toFixed(0),
    ];
  });
}

const HEADER = ['run', 'GRPO steps', 'identity reward', 'SFT reward', 'final reward', 'GRPO gain', 'SSIM SFT → final', 'embedding cos SFT → final', 'PSNR SFT → final', 'wall s'];

function curveSeries(runs: SweepRunResult[], pick: (c: SweepRunResult['curve'][number]) => number | undefined) {
  return runs.map((r) => {
    const pts = r.curve.map((c) => [c.step, pick(c)] as [number, number | undefined]).filter((p): p is [number, number] => p[1] !== undefined && Number.isFinite(p[1]));
    return { name: r.label, points: smooth(pts, Math.max(1, Math.round(pts.length / 20))) };
  });
}

export function renderSweepMarkdown(runs: SweepRunResult[], info: { engine: string; fixed: string[]; configFile?: string }): string {
  const out: string[] = ['# Sweep', ''];
  out.push(`- engine: ${info.engine}; config: ${info.configFile ?? 'the defaults'}${info.fixed.length ? `; fixed overrides: \`${info.fixed.join(' ')}\`` : ''}`);
  out.push(`- evaluation: ${runs[0]?.summary.before.count ?? '?'} corrupted images per run (eval.samples held-out images, each drawn as eval.draws says: once per corruption type by default), the policy mean; semantic reward encoder \`${runs[0]?.summary.encoder ?? '?'}\``);
  out.push('- the reward of each run is computed with that run\'s own expression and weights: compare SSIM and the embedding cosine across runs, the reward within a run', '');
  out.push('## Final evaluations', '');
  out.push(`| ${HEADER.join(' | ')} |`, `|${HEADER.map(() => '---').join('|')}|`, ...tableRows(runs).map((r) => `| ${r.join(' | ')} |`));
  out.push('', '## Over training (rollout means per GRPO step, first / last 10 steps)', '', '| run | reward | SSIM | embedding cos |', '|---|---|---|---|');
  for (const r of runs) {
    const avg = (xs: SweepRunResult['curve'], f: (c: SweepRunResult['curve'][number]) => number | undefined) => {
      const v = xs.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x));
      return v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
    };
    const first = r.curve.slice(0, 10);
    const last = r.curve.slice(-10);
    const cell = (f: (c: SweepRunResult['curve'][number]) => number | undefined) => `${f4(avg(first, f))} → ${f4(avg(last, f))}`;
    out.push(`| ${r.label} | ${cell((c) => c.reward)} | ${cell((c) => c.components.ssim)} | ${cell((c) => c.components.clip_cos)} |`);
  }
  return `${out.join('\n')}\n`;
}

export function renderSweepHtml(runs: SweepRunResult[], info: { engine: string; fixed: string[]; configFile?: string }): string {
  const css = `body{font-family:sans-serif;margin:24px;color:#222;max-width:1300px}table{border-collapse:collapse;margin:8px 0 20px}th,td{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}thead th{background:#f3f3f3}tbody td:first-child{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:16px}`;
  const table = `<table><thead><tr>${HEADER.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${tableRows(runs)
    .map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
  const charts = [
    lineChart({ title: 'GRPO reward per step (moving average)', series: curveSeries(runs, (c) => c.reward), xLabel: 'GRPO step' }),
    lineChart({ title: 'SSIM per step (moving average)', series: curveSeries(runs, (c) => c.components.ssim), xLabel: 'GRPO step' }),
    lineChart({ title: 'embedding cosine per step (moving average)', series: curveSeries(runs, (c) => c.components.clip_cos), xLabel: 'GRPO step' }),
  ];
  const withEvals = runs.filter((r) => r.evals.length > 0);
  if (withEvals.length) charts.push(lineChart({ title: 'evaluation reward during training', series: withEvals.map((r) => ({ name: r.label, points: r.evals.map((e) => [e.version, e.reward] as [number, number]) })), xLabel: 'policy version' }));
  const finals = ['ssim', 'clip_cos'] as const;
  const bars = finals.map((m) =>
    barChart({
      title: `final ${m === 'ssim' ? 'SSIM' : 'embedding cosine'} per run`,
      categories: runs.map((r) => r.label),
      series: [
        { name: 'identity', values: runs.map((r) => r.summary.identity[m]) },
        { name: 'SFT', values: runs.map((r) => r.summary.before[m]) },
        { name: 'final', values: runs.map((r) => r.summary.after[m]) },
      ],
    }),
  );
  return [
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sweep</title><style>${css}</style></head><body>`,
    `<h1>Sweep</h1><p>engine ${esc(info.engine)}; config ${esc(info.configFile ?? 'the defaults')}${info.fixed.length ? `; fixed overrides <code>${esc(info.fixed.join(' '))}</code>` : ''}; ` +
      `${runs[0]?.summary.before.count ?? '?'} held-out images per evaluation; encoder <code>${esc(runs[0]?.summary.encoder ?? '?')}</code>. Each run's reward uses its own expression and weights: compare SSIM and the embedding cosine across runs.</p>`,
    '<h2>Final evaluations</h2>',
    table,
    '<h2>Over training</h2><div class="charts">',
    ...charts,
    '</div><h2>Final components</h2><div class="charts">',
    ...bars,
    '</div></body></html>',
  ].join('\n');
}

export async function writeSweepReport(out: string, runs: SweepRunResult[], info: { engine: string; fixed: string[]; configFile?: string }): Promise<{ md: string; html: string }> {
  const md = join(out, 'sweep.md');
  const html = join(out, 'sweep.html');
  await writeFile(md, renderSweepMarkdown(runs, info));
  await writeFile(html, renderSweepHtml(runs, info));
  return { md, html };
}

/** A config file's fields as dotted key=JSON overrides (to carry --config onto the k8s overlay's run.yaml). */
export function configFileAsOverrides(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  const data = path.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
  const out: string[] = [];
  const walk = (node: unknown, prefix: string) => {
    if (node && typeof node === 'object' && !Array.isArray(node)) {
      for (const [k, v] of Object.entries(node as Record<string, unknown>)) walk(v, prefix ? `${prefix}.${k}` : k);
    } else if (prefix) out.push(`${prefix}=${JSON.stringify(node)}`);
  };
  walk(data ?? {}, '');
  return out;
}
