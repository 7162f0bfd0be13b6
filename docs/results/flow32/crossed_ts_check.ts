// Cross-check of hypotheses.py with lib/eval/crossed.ts's pooledDifference itself (the same pairs and rows).
// Round 32 (flow32): round 31's crossed_ts_check.ts with the flow family's arms and warm start (start.flow).
// usage: node --import tsx docs/results/flow32/crossed_ts_check.ts BASE/compare.json[.gz]
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { pooledDifference } from '../../../lib/eval/crossed.ts';
import type { PerSample } from '../../../lib/eval/evaluate.ts';

type Seed = { seed: number; start: { flow: { perSample: PerSample } }; identity: { perSample: PerSample }; runs: Array<{ method: string; final: { perSample: PerSample } }> };
const path = process.argv[2];
if (!path) throw new Error('usage: crossed_ts_check.ts BASE/compare.json[.gz]');
const raw = readFileSync(path);
const seeds = (JSON.parse((path.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8')) as { seeds: Seed[] }).seeds.sort((x, y) => x.seed - y.seed);
const has = (m: string) => m === 'start' || m === 'identity' || seeds.every((s) => s.runs.some((r) => r.method === m));
const arm = (s: Seed, m: string): PerSample => {
  if (m === 'start') return s.start.flow.perSample;
  if (m === 'identity') return s.identity.perSample;
  const r = s.runs.find((x) => x.method === m);
  if (!r) throw new Error(`seed ${s.seed}: no arm ${m} in ${path}`);
  return r.final.perSample;
};
const only = (p: PerSample, keep: (t: string) => boolean): PerSample => {
  const idx = p.type.map((t, i) => (keep(t) ? i : -1)).filter((i) => i >= 0);
  const pick = <T>(a: readonly T[]) => idx.map((i) => a[i]!);
  return { ...p, id: pick(p.id), type: pick(p.type), level: pick(p.level), reward: pick(p.reward), ssim: pick(p.ssim), psnr: pick(p.psnr) } as PerSample;
};
const all = () => true;
const o15 = (t: string) => t !== 'scan_lines';
const rows: Array<[string, string, string, (t: string) => boolean]> = [
  ['H1 16: S - F', 'flow:scalar', 'flow:sft', all],
  ['H2 16: D - F', 'flow:dense', 'flow:sft', all],
  ['H3 16: S - start', 'flow:scalar', 'start', all],
  ['H4 16: D - start', 'flow:dense', 'start', all],
  ['H5 16: F - start', 'flow:sft', 'start', all],
  ['H6 16: start - identity', 'start', 'identity', all],
  ['H7 15: S - F', 'flow:scalar', 'flow:sft', o15],
  ['H8 16: D - S', 'flow:dense', 'flow:scalar', all],
];
console.log(`seeds ${seeds.map((s) => s.seed).join(', ')}`);
for (const [name, mx, my, keep] of rows) {
  if (!has(mx) || !has(my)) {
    console.log(`${name}: not run (arm not in the report)`);
    continue;
  }
  const pairs = seeds.map((s) => ({ a: only(arm(s, mx), keep), b: only(arm(s, my), keep) }));
  const r = pooledDifference(pairs, 'reward');
  if (!r) throw new Error(`${name}: no interval`);
  console.log(`${name}: ${r.kind} ${r.ci.mean.toFixed(4)} [${r.ci.lo.toFixed(4)}, ${r.ci.hi.toFixed(4)}] df ${r.df}; ${r.photographs} photographs, ${r.runs} seeds`);
}
