// Markdown tables from one or more demo summaries (runs/*/summary.json): overall identity | after SFT | after
// GRPO (reward, SSIM, PSNR) per run, then per corruption type and per level, averaged over the runs, with
// the "do no harm" check (a policy below identity by more than 0.01 is marked).
// node --import tsx scripts/demo-table.ts runs/demo-s0/summary.json [runs/demo-s1/summary.json ...]
import { readFileSync } from 'node:fs';

interface Scores { reward: number; ssim: number; psnr: number; count: number }
interface Report extends Scores { byType: Record<string, Scores>; byLevel: Record<string, Scores> }
interface Summary { identity: Report; before: Report; after: Report; wall_seconds: number; sft_steps: number; steps: number }

const paths = process.argv.slice(2);
if (paths.length === 0) throw new Error('usage: demo-table.ts SUMMARY.json...');
const runs = paths.map((p) => JSON.parse(readFileSync(p, 'utf8')) as Summary);
const f = (x: number, d = 4) => x.toFixed(d);
console.log('| run | SFT / GRPO steps | wall s | reward identity / SFT / GRPO | SSIM identity / SFT / GRPO | PSNR dB identity / SFT / GRPO |');
console.log('|---|---|---|---|---|---|');
runs.forEach((r, i) => console.log(`| ${paths[i]} | ${r.sft_steps} / ${r.steps} | ${r.wall_seconds.toFixed(0)} | ${f(r.identity.reward)} / ${f(r.before.reward)} / ${f(r.after.reward)} | ${f(r.identity.ssim)} / ${f(r.before.ssim)} / ${f(r.after.ssim)} | ${f(r.identity.psnr, 2)} / ${f(r.before.psnr, 2)} / ${f(r.after.psnr, 2)} |`));
for (const key of ['byType', 'byLevel'] as const) {
  // Every type or level any run drew (each seed draws its own corruption per photograph, so a type can be
  // missing from one run); rows average the photographs of all runs, each weighted by its count.
  const names = [...new Set(runs.flatMap((r) => Object.keys(r.identity[key])))].sort();
  console.log(`\n| ${key === 'byType' ? 'corruption type' : 'level'} | n | identity | after SFT | after GRPO | GRPO - identity | do no harm |`);
  console.log('|---|---|---|---|---|---|---|');
  for (const n of names) {
    const count = runs.reduce((s, r) => s + (r.identity[key][n]?.count ?? 0), 0);
    const mean = (which: 'identity' | 'before' | 'after') => runs.reduce((s, r) => {
      const row = r[which][key][n];
      return row ? s + row.reward * row.count : s;
    }, 0) / count;
    const d = mean('after') - mean('identity');
    console.log(`| ${n} | ${count} | ${f(mean('identity'), 3)} | ${f(mean('before'), 3)} | ${f(mean('after'), 3)} | ${d >= 0 ? '+' : ''}${f(d, 3)} | ${d < -0.01 ? 'HARMS' : 'ok'} |`);
  }
}

// Do no harm per run: each run's (after GRPO - identity) per type and level, with the photographs in the row;
// a row below -0.01 is marked. The pooled table above can hide a run's miss.
if (runs.length > 1) {
  console.log(`\n| type or level | ${paths.map((_, i) => `run ${i + 1}: GRPO - identity (n)`).join(' | ')} |`);
  console.log(`|---|${paths.map(() => '---').join('|')}|`);
  for (const key of ['byType', 'byLevel'] as const) {
    const names = [...new Set(runs.flatMap((r) => Object.keys(r.identity[key])))].sort();
    for (const n of names) {
      const cells = runs.map((r) => {
        const id = r.identity[key][n];
        if (!id) return '-';
        const d = r.after[key][n]!.reward - id.reward;
        return `${d >= 0 ? '+' : ''}${f(d, 3)} (${id.count})${d < -0.01 ? ' **HARMS**' : ''}`;
      });
      console.log(`| ${n} | ${cells.join(' | ')} |`);
    }
  }
  const misses = runs.map((r) => (['byType', 'byLevel'] as const).flatMap((key) => Object.entries(r.identity[key])
    .filter(([n, s]) => r.after[key][n]!.reward - s.reward < -0.01).map(([n]) => n)));
  console.log(`\nrows below identity by more than 0.01, per run: ${misses.map((m, i) => `run ${i + 1}: ${m.length ? m.join(', ') : 'none'}`).join('; ')}`);
}
