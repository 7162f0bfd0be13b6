// Markdown tables from one or more demo summaries (runs/*/summary.json): overall identity | after SFT | after
// GRPO (reward, SSIM, PSNR) per run with GRPO - SFT and its 95% paired interval over photographs, then per
// corruption type and per level pooled over the runs, then per run, with the "do no harm" check (a policy below
// identity by more than 0.01 is marked). Every type/level row gives its photographs (and draws where they differ)
// and the 95% paired t interval of GRPO - identity over them (lib/eval/paired.ts; pooled rows count each run's
// photograph as its own unit). Summaries written before round 7 have no per-draw scores: no intervals then.
// node --import tsx scripts/demo-table.ts runs/demo-s0/summary.json [runs/demo-s1/summary.json ...]
import { readFileSync } from 'node:fs';
import type { EvalReport } from '../lib/eval/evaluate.ts';
import { formatPaired, pairedRow, pairedRows, type PairedRow } from '../lib/eval/paired.ts';

interface Summary {
  identity: EvalReport; before: EvalReport; after: EvalReport; wall_seconds: number; sft_steps: number; steps: number;
  eval_draws?: string; eval_images?: number; eval_samples?: number; eval_cpu_seconds?: number;
}

const paths = process.argv.slice(2);
if (paths.length === 0) throw new Error('usage: demo-table.ts SUMMARY.json...');
const runs = paths.map((p) => JSON.parse(readFileSync(p, 'utf8')) as Summary);
const withDraws = runs.every((r) => r.identity.perSample && r.before.perSample && r.after.perSample);
const f = (x: number, d = 4) => x.toFixed(d);
const sg = (x: number, d = 3) => `${x >= 0 ? '+' : ''}${f(x, d)}`;
const drawsOf = (r: Summary) => (r.eval_draws ? `${r.eval_draws}, ${r.eval_images} photographs, ${r.eval_samples} draws` : 'one (before round 7)');

console.log(`| run | evaluation draws | SFT / GRPO steps | wall s | reward identity / SFT / GRPO | GRPO - SFT [95% CI over photographs] | SSIM identity / SFT / GRPO | PSNR dB identity / SFT / GRPO |`);
console.log('|---|---|---|---|---|---|---|---|');
runs.forEach((r, i) => {
  const gain = withDraws ? formatPaired(pairedRows(r.after, r.before).overall) : sg(r.after.reward - r.before.reward, 4);
  console.log(`| ${paths[i]} | ${drawsOf(r)} | ${r.sft_steps} / ${r.steps} | ${r.wall_seconds.toFixed(0)} | ${f(r.identity.reward)} / ${f(r.before.reward)} / ${f(r.after.reward)} | ${gain} | ${f(r.identity.ssim)} / ${f(r.before.ssim)} / ${f(r.after.ssim)} | ${f(r.identity.psnr, 2)} / ${f(r.before.psnr, 2)} / ${f(r.after.psnr, 2)} |`);
});

/** GRPO - identity for row `name` pooled over the runs: each (run, photograph) one unit. */
function pooled(key: 'type' | 'level', name: string): PairedRow | null {
  if (!withDraws) return null;
  const units: string[] = [];
  const diff: number[] = [];
  const idx: number[] = [];
  runs.forEach((r, k) => {
    const a = r.after.perSample!, b = r.identity.perSample!;
    a.id.forEach((id, i) => {
      if (a[key][i] !== name) return;
      idx.push(units.length);
      units.push(`${k}\u0000${id}`);
      diff.push(a.reward[i]! - b.reward[i]!);
    });
  });
  return pairedRow(units, diff, idx);
}

const count = (row: PairedRow | null | undefined, draws: number) => (row ? (row.images === row.draws ? String(row.images) : `${row.images} (${row.draws} draws)`) : String(draws));

for (const key of ['byType', 'byLevel'] as const) {
  // Every type or level any run drew (under eval.draws one a type can be missing from a run); rows average the
  // draws of all runs, each run weighted by its count.
  const names = [...new Set(runs.flatMap((r) => Object.keys(r.identity[key])))].sort();
  console.log(`\n| ${key === 'byType' ? 'corruption type' : 'level'} | photographs | identity | after SFT | after GRPO | GRPO - identity [95% CI] | do no harm |`);
  console.log('|---|---|---|---|---|---|---|');
  for (const n of names) {
    const draws = runs.reduce((s, r) => s + (r.identity[key][n]?.count ?? 0), 0);
    const mean = (which: 'identity' | 'before' | 'after') => runs.reduce((s, r) => {
      const row = r[which][key][n];
      return row ? s + row.reward * row.count : s;
    }, 0) / draws;
    const d = mean('after') - mean('identity');
    const p = pooled(key === 'byType' ? 'type' : 'level', n);
    console.log(`| ${n} | ${count(p, draws)} | ${f(mean('identity'), 3)} | ${f(mean('before'), 3)} | ${f(mean('after'), 3)} | ${p ? formatPaired(p, 3) : sg(d)} | ${d < -0.01 ? 'HARMS' : 'ok'} |`);
  }
}

// Do no harm per run: each run's (after GRPO - identity) per type and level, with its interval and photographs; a
// row below -0.01 is marked (resolved when its whole interval is below -0.01). The pooled table can hide a run's miss.
if (runs.length > 1) {
  console.log(`\n| type or level | ${paths.map((_, i) => `run ${i + 1}: GRPO - identity [95% CI] (photographs)`).join(' | ')} |`);
  console.log(`|---|${paths.map(() => '---').join('|')}|`);
  const paired = runs.map((r) => (withDraws ? pairedRows(r.after, r.identity) : null));
  for (const key of ['byType', 'byLevel'] as const) {
    const names = [...new Set(runs.flatMap((r) => Object.keys(r.identity[key])))].sort();
    for (const n of names) {
      const cells = runs.map((r, k) => {
        const id = r.identity[key][n];
        if (!id) return '-';
        const d = r.after[key][n]!.reward - id.reward;
        const p = paired[k]?.[key][n];
        const mark = d < -0.01 ? (p && p.ci.hi < -0.01 ? ' **HARMS (resolved)**' : ' **HARMS**') : '';
        const within = p ? (p.images === p.draws ? String(p.images) : `${p.images}; ${p.draws} draws`) : String(id.count);
        return `${p ? formatPaired(p, 3) : sg(d)} (${within})${mark}`;
      });
      console.log(`| ${n} | ${cells.join(' | ')} |`);
    }
  }
  const misses = runs.map((r) => (['byType', 'byLevel'] as const).flatMap((key) => Object.entries(r.identity[key])
    .filter(([n, s]) => r.after[key][n]!.reward - s.reward < -0.01).map(([n]) => n)));
  console.log(`\nrows below identity by more than 0.01, per run: ${misses.map((m, i) => `run ${i + 1}: ${m.length ? m.join(', ') : 'none'}`).join('; ')}`);
}
