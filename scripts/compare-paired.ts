// Paired differences of final values between arms of a `sweep --methods` report (same seed, same images and
// corruptions), with the t interval over seeds from lib/eval/stats.ts (lib/experiments/paired.ts) and, where the
// report keeps per-draw scores, the crossed seeds x photographs interval (lib/eval/crossed.ts), which also counts
// the photographs as a sample (the seeds' t does not): "crossed seeds x 64 photographs +m [lo, hi] df N". Pairs are
// A-B arguments; a side is an arm, `identity` or `start:FAMILY` (a warm start). Without pairs: the first arm
// against each other arm. Then every arm and warm start against identity, and each seed's step counts.
//
//   node --import tsx scripts/compare-paired.ts docs/results/method-compare-photos6/compare.json dense-sft dense-scalar
//   node --import tsx scripts/compare-paired.ts docs/results/flow-families4/compare.json gaussian:dense-flow:scalar \
//     gaussian:dense-flow:dense flow:scalar-flow:dense flow:scalar-flow:sft flow:dense-flow:sft gaussian:dense-gaussian:sft
import { readFileSync } from 'node:fs';
import { formatCI } from '../lib/eval/stats.ts';
import { formatPaired } from '../lib/eval/paired.ts';
import type { PooledDifference } from '../lib/eval/crossed.ts';
import { pairedDifferences, parseCompareSeeds, parsePairs, type PairedDifference } from '../lib/experiments/paired.ts';

const [file, ...pairArgs] = process.argv.slice(2);
if (!file) throw new Error('usage: compare-paired.ts COMPARE_JSON [A-B ...] (a `sweep --methods` report; sides: arms, identity, start:FAMILY)');
const seeds = parseCompareSeeds(readFileSync(file, 'utf8'), file);

const digits = { reward: 4, ssim: 4, psnr: 2 } as const;
/** The interval with seeds and photographs both as samples (what the t over seeds leaves out: the photographs). */
const crossedText = (p: PooledDifference, d: number) =>
  p.kind === 'crossed' ? `crossed seeds x ${p.photographs} photographs ${formatPaired(p, d)} df ${p.df}` : `${p.kind === 'one-run' ? `over ${p.photographs} photographs` : 'photographs differ between seeds'} ${formatPaired(p, d)}`;
const line = (label: string, d: PairedDifference) =>
  console.log(`${label} ${d.metric}: ${formatCI(d.ci, digits[d.metric])} per seed ${d.perSeed.map((x) => (x >= 0 ? '+' : '') + x.toFixed(digits[d.metric])).join(', ')}${d.crossed ? `; ${crossedText(d.crossed, digits[d.metric])}` : ''}`);

for (const [a, b] of parsePairs(pairArgs, seeds)) {
  for (const d of pairedDifferences(seeds, a, b, file)) line(`${a} - ${b}`, d);
}
for (const a of seeds[0]!.runs.map((r) => r.method)) {
  for (const d of pairedDifferences(seeds, a, 'identity', file)) line(`${a} - identity`, d);
}
for (const family of Object.keys(seeds[0]!.start)) {
  for (const d of pairedDifferences(seeds, `start:${family}`, 'identity', file)) line(`${family} warm start - identity`, d);
}
for (const s of seeds) console.log(`seed ${s.seed} steps ${JSON.stringify(Object.fromEntries(s.runs.map((r) => [r.method, r.steps])))}`);
