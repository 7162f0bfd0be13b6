// Paired differences of final values between arms of a `sweep --methods` report (same seed, same images and
// corruptions), with the t interval over seeds from lib/eval/stats.ts, the interval compare.ts itself reports
// against its first arm. Used for docs/flow.md's family comparisons (docs/results/flow-families{3,4}/compare.json).
//
//   node --import tsx scripts/compare-paired.ts docs/results/flow-families4/compare.json
import { readFileSync } from 'node:fs';
import { formatCI, meanCI } from '../lib/eval/stats.ts';

interface Values { reward: number; ssim: number }
interface SeedReport {
  seed: number;
  identity: Values;
  start: Record<string, Values>;
  runs: { method: string; steps: number; final: Values }[];
}

const file = process.argv[2];
if (!file) throw new Error('usage: compare-paired.ts COMPARE_JSON (a `sweep --methods` report)');
const seeds = (JSON.parse(readFileSync(file, 'utf8')) as { seeds?: SeedReport[] }).seeds;
if (!Array.isArray(seeds) || seeds.length === 0) throw new Error(`${file}: no "seeds" array (not a sweep --methods compare.json)`);

const final = (s: SeedReport, method: string) => s.runs.find((r) => r.method === method)?.final;
const line = (label: string, xs: number[]) => console.log(`${label}: ${formatCI(meanCI(xs))} per seed ${xs.map((x) => (x >= 0 ? '+' : '') + x.toFixed(4)).join(', ')}`);

const PAIRS = [['gaussian:dense', 'flow:scalar'], ['gaussian:dense', 'flow:dense'], ['flow:scalar', 'flow:dense'],
  ['flow:scalar', 'flow:sft'], ['flow:dense', 'flow:sft'], ['gaussian:dense', 'gaussian:sft']] as const;
for (const [a, b] of PAIRS) {
  for (const k of ['reward', 'ssim'] as const) {
    line(`${a} - ${b} ${k}`, seeds.flatMap((s) => { const fa = final(s, a); const fb = final(s, b); return fa && fb ? [fa[k] - fb[k]] : []; }));
  }
}
for (const a of ['flow:scalar', 'flow:dense', 'gaussian:dense', 'flow:sft', 'gaussian:sft']) {
  line(`${a} - identity reward`, seeds.flatMap((s) => { const f = final(s, a); return f ? [f.reward - s.identity.reward] : []; }));
}
for (const family of ['flow', 'gaussian']) {
  line(`${family} warm start - identity reward`, seeds.map((s) => s.start[family]!.reward - s.identity.reward));
}
for (const s of seeds) console.log(`seed ${s.seed} steps ${JSON.stringify(Object.fromEntries(s.runs.map((r) => [r.method, r.steps])))}`);
