// Micro-bench of the rollout noise: fillStandardNormal from a seed (the generator's state kept in the loop) against the same
// function driven through rng(seed) (the closure route every fill took before round 13), with a byte-equality
// check of the two. Usage: node --import tsx bench/standard-normal.ts [values per fill, default 3072] [fills, default 2000]
import { fillStandardNormal, rng } from '../lib/data/random.ts';

const per = Number(process.argv[2] ?? 3072);
const fills = Number(process.argv[3] ?? 2000);
const a = new Float32Array(per);
const b = new Float32Array(per);
for (let s = 0; s < 200; s++) {
  fillStandardNormal(a, s * 7919 + 1);
  fillStandardNormal(b, rng(s * 7919 + 1));
  if (Buffer.compare(Buffer.from(a.buffer), Buffer.from(b.buffer)) !== 0) throw new Error(`seed ${s * 7919 + 1}: the two routes differ`);
}
const time = (fill: (seed: number) => void): number => {
  const t0 = performance.now();
  for (let s = 0; s < fills; s++) fill(s);
  return (performance.now() - t0) / fills;
};
const rows: Record<string, number[]> = { 'rng(seed) closure (before)': [], 'seed, no closure (now)': [] };
for (let rep = 0; rep < 5; rep++) {
  rows['rng(seed) closure (before)']!.push(time((s) => fillStandardNormal(b, rng(s))));
  rows['seed, no closure (now)']!.push(time((s) => fillStandardNormal(a, s)));
}
const median = (x: number[]) => [...x].sort((p, q) => p - q)[Math.floor(x.length / 2)]!;
for (const [name, ms] of Object.entries(rows)) console.log(`${name.padEnd(28)} ${(median(ms) * 1000).toFixed(1)} us per ${per} values (median of 5)`);
console.log('bytes equal: yes (200 seeds)');
