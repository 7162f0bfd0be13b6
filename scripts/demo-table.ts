// Markdown tables from one or more demo summaries (runs/*/summary.json): overall identity | after SFT | after
// GRPO (reward, SSIM, PSNR) per run with GRPO - SFT and its 95% paired interval over photographs (that run's
// trained policies fixed), then, for several runs, the overall GRPO - SFT, SFT - identity and GRPO - identity
// pooled over them (the crossed interval below: whether a difference holds across training seeds), then per
// corruption type and per level pooled over the runs, then per run, with the "do no harm" check (a policy below
// identity by more than 0.01 is marked). Every type/level row gives its photographs (and draws where they differ)
// and the 95% interval of GRPO - identity: per run the paired t interval over its photographs (lib/eval/paired.ts);
// pooled over runs evaluated on the same photographs, the crossed runs x photographs interval (lib/eval/crossed.ts:
// a photograph seen by three runs is one photograph, and the spread between runs counts; its Satterthwaite df in the
// photographs cell), else the t interval over the runs' row means. Summaries written before round 7 have no
// per-draw scores: no intervals then.
// node --import tsx scripts/demo-table.ts runs/demo-s0/summary.json [runs/demo-s1/summary.json ...]
import { readFileSync } from 'node:fs';
import type { EvalReport } from '../lib/eval/evaluate.ts';
import { pooledDifference } from '../lib/eval/crossed.ts';
import { formatPaired, pairedRows } from '../lib/eval/paired.ts';

interface Summary {
  identity: EvalReport; before: EvalReport; after: EvalReport; wall_seconds: number; sft_steps: number; steps: number;
  eval_draws?: string; eval_images?: number; eval_samples?: number; eval_cpu_seconds?: number;
}

const paths = process.argv.slice(2);
if (paths.length === 0) throw new Error('usage: demo-table.ts SUMMARY.json...');
const runs = paths.map((p) => JSON.parse(readFileSync(p, 'utf8')) as Summary);
const withDraws = runs.every((r) => r.identity.perSample && r.before.perSample && r.after.perSample);
const f = (x: number, d = 4) => x.toFixed(d);
type Side = 'identity' | 'before' | 'after';
const sg = (x: number, d = 3) => `${x >= 0 ? '+' : ''}${f(x, d)}`;
const drawsOf = (r: Summary) => (r.eval_draws ? `${r.eval_draws}, ${r.eval_images} photographs, ${r.eval_samples} draws` : 'one (before round 7)');

console.log(`| run | evaluation draws | SFT / GRPO steps | wall s | reward identity / SFT / GRPO | GRPO - SFT [95% CI over photographs; this run's policies fixed] | SSIM identity / SFT / GRPO | PSNR dB identity / SFT / GRPO |`);
console.log('|---|---|---|---|---|---|---|---|');
runs.forEach((r, i) => {
  const gain = withDraws ? formatPaired(pairedRows(r.after, r.before).overall) : sg(r.after.reward - r.before.reward, 4);
  console.log(`| ${paths[i]} | ${drawsOf(r)} | ${r.sft_steps} / ${r.steps} | ${r.wall_seconds.toFixed(0)} | ${f(r.identity.reward)} / ${f(r.before.reward)} / ${f(r.after.reward)} | ${gain} | ${f(r.identity.ssim)} / ${f(r.before.ssim)} / ${f(r.after.ssim)} | ${f(r.identity.psnr, 2)} / ${f(r.before.psnr, 2)} / ${f(r.after.psnr, 2)} |`);
});

/** A pooled row: a - b (GRPO - identity by default) with its 95% interval, and what the interval counts as its units. */
interface Pooled { ci: { mean: number; half: number; lo: number; hi: number }; units: string }

/**
 * a - b pooled over the runs (lib/eval/crossed.ts's pooledDifference): one run, its t interval over photographs;
 * several on the same photographs, runs and photographs both random (the same photograph in three runs is one
 * photograph, and the spread between training seeds counts); else the t interval over the runs' row means.
 */
function pooled(row?: { key: 'type' | 'level'; name: string }, a: Side = 'after', b: Side = 'identity', metric: 'reward' | 'ssim' = 'reward'): Pooled | null {
  if (!withDraws) return null;
  const p = pooledDifference(runs.map((r) => ({ a: r[a].perSample!, b: r[b].perSample! })), metric, row);
  if (!p) return null;
  if (p.kind === 'one-run') return { ci: p.ci, units: p.draws === p.photographs ? `${p.photographs}` : `${p.photographs} (${p.draws} draws)` };
  if (p.kind === 'crossed') {
    // The degrees of freedom say how far the interval rests on the few runs (2 where the runs' spread dominates).
    const notes = [...(p.draws === p.photographs * p.runs ? [] : [`${p.draws} draws`]), ...(p.allPhotographs > p.photographs ? [`${p.allPhotographs - p.photographs} not in every run left out`] : []), `df ${p.df}`];
    return { ci: p.ci, units: `${p.photographs} photographs x ${p.runs} runs (${notes.join('; ')})` };
  }
  return { ci: p.ci, units: `t over ${p.runs} runs' means (photographs differ between runs: ${p.inEveryRun} of ${p.allPhotographs} in every run; ${p.draws} draws)` };
}

// The overall differences pooled over the runs: the per-run interval above treats that run's trained policy as
// fixed (photographs are its only samples); whether a difference holds across training seeds is this one.
if (withDraws && runs.length > 1) {
  console.log(`\nOverall, pooled over the ${runs.length} runs: 95% interval with runs (training seeds) and photographs both as samples (crossed, lib/eval/crossed.ts; df: Satterthwaite's, 2 where the runs' spread dominates).`);
  console.log('\n| difference | photographs | reward [95% CI] | SSIM [95% CI] |');
  console.log('|---|---|---|---|');
  for (const [label, a, b] of [['GRPO - SFT', 'after', 'before'], ['SFT - identity', 'before', 'identity'], ['GRPO - identity', 'after', 'identity']] as const) {
    const reward = pooled(undefined, a, b)!, ssim = pooled(undefined, a, b, 'ssim')!;
    console.log(`| ${label} | ${reward.units} | ${formatPaired(reward)} | ${formatPaired(ssim)} |`);
  }
}

for (const key of ['byType', 'byLevel'] as const) {
  // Every type or level any run drew (under eval.draws one a type can be missing from a run); rows average the
  // draws of all runs, each run weighted by its count.
  const names = [...new Set(runs.flatMap((r) => Object.keys(r.identity[key])))].sort();
  if (withDraws && runs.length > 1 && key === 'byType') {
    console.log('\nPooled rows: the 95% interval takes runs and photographs both as samples (crossed, lib/eval/crossed.ts) where the runs share the row\'s photographs; "t over N runs\' means" where they do not.');
  }
  console.log(`\n| ${key === 'byType' ? 'corruption type' : 'level'} | photographs | identity | after SFT | after GRPO | GRPO - identity [95% CI] | do no harm |`);
  console.log('|---|---|---|---|---|---|---|');
  for (const n of names) {
    const draws = runs.reduce((s, r) => s + (r.identity[key][n]?.count ?? 0), 0);
    const mean = (which: 'identity' | 'before' | 'after') => runs.reduce((s, r) => {
      const row = r[which][key][n];
      return row ? s + row.reward * row.count : s;
    }, 0) / draws;
    const d = mean('after') - mean('identity');
    const p = pooled({ key: key === 'byType' ? 'type' : 'level', name: n });
    console.log(`| ${n} | ${p ? p.units : String(draws)} | ${f(mean('identity'), 3)} | ${f(mean('before'), 3)} | ${f(mean('after'), 3)} | ${p ? formatPaired(p, 3) : sg(d)} | ${d < -0.01 ? 'HARMS' : 'ok'} |`);
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
