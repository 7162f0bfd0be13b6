// Pooled GRPO - identity rows recomputed from the per-seed rows a doc prints, for rounds whose summaries are not
// kept (docs/data-history.md rounds 7-9). The crossed runs x photographs interval (lib/eval/crossed.ts) needs each
// photograph's difference per seed; a per-seed row gives only its mean m_r and its t interval over n_r photographs
// (hence its sd over photographs, s_r = half_r sqrt(n_r) / t(n_r - 1)). Two intervals follow from them:
//   - "over seeds": the t interval over the seeds' row means (2 df for 3 seeds). It counts the spread between seeds
//     but not the photographs' (a photograph's difficulty is shared by every seed's mean), so it is the narrower one
//     in expectation;
//   - "at most": the crossed interval when all within-seed spread is photograph spread shared by every seed
//     (residual 0): Var = var(m_r) / R + mean(s_r^2) / P, Satterthwaite df. The crossed variance with the true
//     residual is never above this one.
// The printed figures carry the doc's rounding (3 decimals on means and interval ends).
// node --import tsx scripts/pooled-from-doc-rows.ts docs/data-history.md "Round 8: grpo8"
import { readFileSync } from 'node:fs';
import { meanCI, tQuantile975 } from '../lib/eval/stats.ts';

const [file, heading] = process.argv.slice(2);
if (!file || !heading) throw new Error('usage: pooled-from-doc-rows.ts DOC.md "heading text before the per-seed table"');
const text = readFileSync(file, 'utf8');
// The heading as a Markdown heading line first (docs/data-history.md also names every section in its index above
// them), else anywhere in the text.
const headingLine = new RegExp(`^#{1,6}[ \t]+${heading.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm').exec(text);
const from = headingLine ? headingLine.index : text.indexOf(heading);
if (from < 0) throw new Error(`pooled-from-doc-rows: "${heading}" is not in ${file}`);
const start = text.indexOf('| type or level | seed 0', from);
if (start < 0) throw new Error(`pooled-from-doc-rows: no per-seed table ("| type or level | seed 0 ...") after "${heading}" in ${file}`);
const lines = text.slice(start).split('\n');
const rows = lines.slice(2, lines.findIndex((l, i) => i > 1 && !l.startsWith('|')));

const num = (s: string) => Number(s.replace('+', ''));
const f = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(3)}`;
const P = 64;

console.log('| type or level | mean of the seeds\' rows | over seeds: t over the 3 seeds\' means | at most: crossed, photographs fully shared (df) |');
console.log('|---|---|---|---|');
for (const row of rows) {
  const cells = row.split('|').slice(1, -1).map((c) => c.trim());
  const name = cells[0]!;
  const seeds = cells.slice(1).map((c) => {
    const m = /^([+-][0-9.]+) \[([+-][0-9.]+), ([+-][0-9.]+)\] \(([0-9]+)/.exec(c);
    if (!m) throw new Error(`pooled-from-doc-rows: cannot read "${c}" in row ${name}`);
    const n = Number(m[4]);
    const half = (num(m[3]!) - num(m[2]!)) / 2;
    return { mean: num(m[1]!), n, sd: (half * Math.sqrt(n)) / tQuantile975(n - 1) };
  });
  const R = seeds.length;
  const over = meanCI(seeds.map((s) => s.mean));
  const msRun = P * over.sd ** 2;
  const msPhoto = seeds.reduce((a, s) => a + s.sd ** 2, 0);
  const se = Math.sqrt((msRun + msPhoto) / (R * P));
  const df = Math.max(1, Math.floor((msRun + msPhoto) ** 2 / (msRun ** 2 / (R - 1) + msPhoto ** 2 / (P - 1))));
  const half = tQuantile975(df) * se;
  console.log(`| ${name} | ${f(over.mean)} | [${f(over.lo)}, ${f(over.hi)}] | [${f(over.mean - half)}, ${f(over.mean + half)}] (${df}) |`);
}
