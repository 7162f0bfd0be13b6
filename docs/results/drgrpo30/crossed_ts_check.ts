// Cross-check of hypotheses.py with lib/eval/crossed.ts's pooledDifference itself (the same pairs and rows).
// usage: node --import tsx docs/results/drgrpo30/crossed_ts_check.ts BASE/compare.json NOSTD/compare.json NOSTDKL/compare.json
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { pooledDifference } from '../../../lib/eval/crossed.ts';
import type { PerSample } from '../../../lib/eval/evaluate.ts';

type Seed = { seed: number; start: { gaussian: { perSample: PerSample } }; runs: Array<{ method: string; final: { perSample: PerSample } }> };
const load = (p: string): Map<number, Seed> => {
  const raw = readFileSync(p);
  const seeds = (JSON.parse((p.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8')) as { seeds: Seed[] }).seeds;
  return new Map(seeds.map((s) => [s.seed, s]));
};
const [base, nostd, kl] = process.argv.slice(2, 5).map(load) as [Map<number, Seed>, Map<number, Seed>, Map<number, Seed>];
const ks = [...base.keys()].filter((k) => nostd.has(k) && kl.has(k)).sort((x, y) => x - y);
const arm = (s: Seed, m: string) => (m === 'start' ? s.start.gaussian.perSample : s.runs.find((r) => r.method === m)!.final.perSample);
const only = (p: PerSample, keep: (t: string) => boolean): PerSample => {
  const idx = p.type.map((t, i) => (keep(t) ? i : -1)).filter((i) => i >= 0);
  const pick = <T>(a: readonly T[]) => idx.map((i) => a[i]!);
  return { ...p, id: pick(p.id), type: pick(p.type), level: pick(p.level), reward: pick(p.reward), ssim: pick(p.ssim), psnr: pick(p.psnr) } as PerSample;
};
const all = () => true;
const sl = (t: string) => t === 'scan_lines';
const o15 = (t: string) => t !== 'scan_lines';
const rows: Array<[string, Map<number, Seed>, string, Map<number, Seed>, string, (t: string) => boolean]> = [
  ['H1 16: D - B', kl, 'dense', base, 'sft', all],
  ['H2 16: D - A', kl, 'dense', base, 'dense', all],
  ['H3 sl: D - A', kl, 'dense', base, 'dense', sl],
  ['H4 15: D - A', kl, 'dense', base, 'dense', o15],
  ['H5 sl: C - A', nostd, 'dense', base, 'dense', sl],
  ['H6 16: C - start', nostd, 'dense', base, 'start', all],
  ['H7 16: C - B', nostd, 'dense', base, 'sft', all],
];
console.log(`seeds ${ks.join(', ')}`);
for (const [name, x, mx, y, my, keep] of rows) {
  const pairs = ks.map((k) => ({ a: only(arm(x.get(k)!, mx), keep), b: only(arm(y.get(k)!, my), keep) }));
  const r = pooledDifference(pairs, 'reward')!;
  console.log(`${name}: ${r.kind} ${r.ci.mean.toFixed(4)} [${r.ci.lo.toFixed(4)}, ${r.ci.hi.toFixed(4)}] df ${r.df}; ${r.photographs} photographs, ${r.runs} seeds`);
}
