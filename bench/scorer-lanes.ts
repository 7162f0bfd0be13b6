// The scoring path end to end: RewardScorer on the CPU with 2 lanes (default encoder), 64 pairs of 256x256, REPS
// calls after one warm-up; prints wall and CPU medians and a sha256 of the outputs, to compare two trees' runs
// (docs/performance-history/ssim.md, "Round 19: ssim19"):
//   MAP=1 REPS=5 node --import tsx bench/scorer-lanes.ts      (MAP=1: the SSIM maps too)
import { createHash } from 'node:crypto';
import { RewardScorer } from '../lib/models/scorer.ts';
import { rng } from '../lib/data/random.ts';

const N = 64;
const S = 256;
const per = 3 * S * S;
const r = rng(1);
const a = new Float32Array(N * per).map((_, i) => Math.round(128 + 100 * Math.sin((i % S) / 9 + Math.floor(i / per))) / 255);
const b = Float32Array.from(a, (v) => Math.min(1, Math.max(0, Math.round(v * 255 + r.normal() * 20) / 255)));
const scorer = new RewardScorer(undefined, 'cpu', { lanes: 2 });
const wantMap = process.env.MAP === '1';
const call = () => scorer.score({ candidates: a, references: b, n: N, height: S, width: S }, wantMap);
const first = await call();
const hash = createHash('sha256');
for (const t of [first.ssim, first.clip_cos, ...(first.ssim_map ? [first.ssim_map] : [])]) hash.update(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
const wall: number[] = [];
const cpu: number[] = [];
for (let i = 0; i < Number(process.env.REPS ?? 5); i++) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await call();
  wall.push(performance.now() - t0);
  const c = process.cpuUsage(c0);
  cpu.push((c.user + c.system) / 1000);
}
const median = (v: number[]) => [...v].sort((x, y) => x - y)[v.length >> 1]!;
const list = (v: number[]) => v.map((x) => x.toFixed(0)).join(' ');
console.log(`RewardScorer, 2 lanes, ${N} pairs of ${S}x${S}${wantMap ? ' with maps' : ''}: ${median(wall).toFixed(0)} ms wall [${list(wall)}], ${median(cpu).toFixed(0)} ms CPU [${list(cpu)}]; outputs sha256 ${hash.digest('hex').slice(0, 16)}`);
await scorer.close();
