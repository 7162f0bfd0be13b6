// Round 33's pre-registered test (preregistration.md): the hypotheses from the two sweeps' per-seed results, with
// lib/eval/crossed.ts's pooledDifference (round 32's crossed_ts_check.ts approach: 95% crossed seeds x photographs
// intervals of per-draw reward differences, paired by seed and draw), the design check first, then the per-seed
// collapse counts and the training logs' drift (description).
//
//   node --import tsx docs/results/flow33/analyze.ts runs/f33/S runs/f33/Dk 65 66 67
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { pooledDifference } from '../../../lib/eval/crossed.ts';
import type { PerSample } from '../../../lib/eval/evaluate.ts';
import type { SingleProcessStep } from '../../../lib/local/single-process.ts';

type Report = { reward: number; ssim: number; psnr: number; perSample: PerSample };
type Seed = { seed: number; start: { flow: Report }; identity: Report; runs: Array<{ method: string; steps: number; seconds: number; final: Report; gain: Record<string, number>; weights: string }> };
const [sDir, dDir, ...seedArgs] = process.argv.slice(2);
if (!sDir || !dDir || seedArgs.length === 0) throw new Error('usage: analyze.ts S_DIR DK_DIR SEED...');
const read = (dir: string, k: number): Seed | null => {
  const f = join(dir, `seed-${k}.json`);
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as { result: Seed }).result : null;
};
const complete = seedArgs.map(Number).filter((k) => read(sDir, k) && read(dDir, k));
const left = seedArgs.map(Number).filter((k) => !complete.includes(k));
console.log(`seeds complete in both sweeps: ${complete.join(', ') || 'none'}${left.length ? `; left out (not complete): ${left.join(', ')}` : ''}`);

const S = new Map(complete.map((k) => [k, read(sDir, k)!]));
const D = new Map(complete.map((k) => [k, read(dDir, k)!]));
const arm = (m: Map<number, Seed>, k: number, method: string) => {
  const r = m.get(k)!.runs.find((x) => x.method === method);
  if (!r) throw new Error(`seed ${k}: no arm ${method}`);
  return r;
};

// Design check: per seed, both sweeps evaluated the same warm start (equal per-draw rewards) and identity on the
// same draws, and every arm on those draws.
const same = (a: PerSample, b: PerSample, values: boolean) =>
  a.id.length === b.id.length && a.id.every((id, i) => id === b.id[i] && a.type[i] === b.type[i] && a.level[i] === b.level[i] && (!values || a.reward[i] === b.reward[i]));
for (const k of complete) {
  const s = S.get(k)!;
  const d = D.get(k)!;
  const ok = same(s.start.flow.perSample, d.start.flow.perSample, true) && same(s.identity.perSample, d.identity.perSample, true)
    && same(s.start.flow.perSample, arm(S, k, 'flow:scalar').final.perSample, false) && same(s.start.flow.perSample, arm(D, k, 'flow:dense').final.perSample, false);
  console.log(`design check seed ${k}: ${ok ? 'ok (one warm start, one identity, every arm on the same draws)' : 'FAILED'}`);
  if (!ok) process.exit(1);
}

if (complete.length < 2) {
  console.log('fewer than 2 complete seeds: no interval');
  process.exit(0);
}
const policy = (k: number, which: string): PerSample =>
  which === 'start' ? S.get(k)!.start.flow.perSample : which === 'identity' ? S.get(k)!.identity.perSample : which === 'S' ? arm(S, k, 'flow:scalar').final.perSample : arm(D, k, 'flow:dense').final.perSample;
const rows: Array<[string, string, string, string]> = [
  ['H1', 'Dk - S', 'Dk', 'S'],
  ['H2', 'S - warm start', 'S', 'start'],
  ['H3', 'Dk - warm start', 'Dk', 'start'],
];
const f = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(4)}`;
console.log(`\nintervals (reward, 95% crossed seeds x photographs, ${complete.length} seeds; df Satterthwaite's, floored):`);
for (const [h, name, x, y] of rows) {
  const r = pooledDifference(complete.map((k) => ({ a: policy(k, x), b: policy(k, y) })), 'reward');
  if (!r) throw new Error(`${h}: no interval`);
  const perSeed = complete.map((k) => {
    const a = policy(k, x).reward;
    const b = policy(k, y).reward;
    return f(a.reduce((s, v, i) => s + v - b[i]!, 0) / a.length);
  });
  console.log(`${h} ${name.padEnd(16)} ${f(r.ci.mean)} [${f(r.ci.lo)}, ${f(r.ci.hi)}] df ${r.df} (${r.kind}); per seed ${perSeed.join(', ')}`);
}

console.log('\nper seed and arm (description and the collapse rule): steps, CPU s, reward gain, PSNR gain, the training log\'s largest 10-step mean |channel error| and 10-step mean KL');
for (const k of complete) {
  for (const [name, m, method, dir] of [['S', S, 'flow:scalar', sDir], ['Dk', D, 'flow:dense', dDir]] as const) {
    const r = arm(m, k, method);
    const file = join(dir, r.weights.replace(/\.safetensors$/, '.steps.jsonl'));
    const steps = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as SingleProcessStep);
    let err = 0;
    let kl = 0;
    for (let i = 0; i + 10 <= steps.length; i += 10) {
      const w = steps.slice(i, i + 10);
      for (let c = 0; c < 3; c++) err = Math.max(err, Math.abs(w.reduce((s, x) => s + x.channelError[c]!, 0) / 10));
      kl = Math.max(kl, w.reduce((s, x) => s + x.kl, 0) / 10);
    }
    const collapsed = r.gain.reward! < -0.05;
    console.log(`seed ${k} ${name.padEnd(2)} ${String(r.steps).padStart(4)} steps ${r.seconds.toFixed(0)} CPU s  reward ${f(r.gain.reward!)}  PSNR ${f(r.gain.psnr!)} dB  max |err| ${err.toFixed(3)}  max KL ${kl.toExponential(2)}${collapsed ? '  COLLAPSED (gain < -0.05)' : ''}`);
  }
}
