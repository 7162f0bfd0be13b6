// Cross-check of hypotheses.py with lib/eval/crossed.ts's pooledDifference itself (the same pairs and rows).
// usage: node --import tsx docs/results/scanlines-weight30/crossed_ts_check.ts BASE/compare.json SLW4/compare.json
import { readFileSync } from 'node:fs';
import { pooledDifference } from '../../../lib/eval/crossed.ts';
import type { PerSample } from '../../../lib/eval/evaluate.ts';

type Seed = { seed: number; runs: Array<{ method: string; final: { perSample: PerSample } }> };
const load = (p: string) => (JSON.parse(readFileSync(p, 'utf8')) as { seeds: Seed[] }).seeds;
const [base, slw] = [load(process.argv[2]!), load(process.argv[3]!)];
const arm = (s: Seed, m: string) => s.runs.find((r) => r.method === m)!.final.perSample;
const only = (p: PerSample, keep: (t: string) => boolean): PerSample => {
  const idx = p.type.map((t, i) => (keep(t) ? i : -1)).filter((i) => i >= 0);
  const pick = <T>(a: readonly T[]) => idx.map((i) => a[i]!);
  return { ...p, id: pick(p.id), type: pick(p.type), level: pick(p.level), reward: pick(p.reward), ssim: pick(p.ssim), psnr: pick(p.psnr) } as PerSample;
};
const rows: Array<[string, string, (t: string) => boolean]> = [
  ['H1 scan_lines dense(w) - dense(base)', 'dense', (t) => t === 'scan_lines'],
  ['H2 other 15 dense(w) - dense(base)', 'dense', (t) => t !== 'scan_lines'],
  ['H3 all 16 dense(w) - dense(base)', 'dense', () => true],
  ['H4 all 16 dense(w) - sft(base)', 'sft', () => true],
];
for (const [name, b, keep] of rows) {
  const pairs = slw.map((s, i) => ({ a: only(arm(s, 'dense'), keep), b: only(arm(base[i]!, b), keep) }));
  const r = pooledDifference(pairs, 'reward')!;
  console.log(`${name}: ${r.kind} ${r.ci.mean.toFixed(4)} [${r.ci.lo.toFixed(4)}, ${r.ci.hi.toFixed(4)}] df ${r.df}; ${r.photographs} photographs, ${r.runs} seeds`);
}
