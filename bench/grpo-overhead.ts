// Probe: what of the GRPO step is not the graph's arithmetic (grpo19). Interleaved contenders at one size/mode:
// the policy forward, the trainer's GRPO graph run, the full step, the raw session run with prebuilt feeds,
// the raw run fetching only loss + gradients, AdamW alone. Prints wall, CPU and minor page faults (medians).
//   OVH_SIZE=128 OVH_MODE=dense OVH_REPS=5 node --import tsx bench/grpo-overhead.ts
import { gradientsFrom, paramFeeds, scalarFeed } from '../lib/models/feeds.ts';
import { loadavg } from 'node:os';
import { grpoBenchCase } from './grpo-setup.ts';

const size = Number(process.env.OVH_SIZE ?? 128);
const mode = (process.env.OVH_MODE ?? 'dense') as 'scalar' | 'dense';
const reps = Number(process.env.OVH_REPS ?? 5);
const N = 32;
const { params, runner, trainer, images, noise, batch } = await grpoBenchCase(size, mode, N);
const dense = mode === 'dense';
const session = await trainer.grpo.session('plain');
const dims = [N, 3, size, size];
const m = size - 10;
const feeds = {
  ...paramFeeds(params), image: { data: images, dims }, action: { data: batch.actions, dims },
  logp_old: { data: batch.logpOld, dims: dense ? dims : [N] }, advantage: { data: batch.advantages, dims: [N] },
  ref_mean: { data: batch.refMean, dims }, clip_low: scalarFeed(0.2), clip_high: scalarFeed(0.28), dual_clip: scalarFeed(3), beta: scalarFeed(0.01),
  ...(dense ? { advantage_map: { data: batch.advantageMap!, dims: [N, 3, m, m] } } : {}),
};
const gradNames = session.outputNames.filter((n) => n.startsWith('grad.') || n === 'loss');
let lastGrads = gradientsFrom(await session.run(feeds));
const contenders: Array<[string, () => Promise<unknown> | unknown]> = [
  ['forward', () => runner.run(params, images, noise, N)],
  ['grpoForward', () => trainer.grpoForward(batch)],
  ['grpoStep', () => trainer.grpoStep(batch)],
  ['session.run all', () => session.run(feeds)],
  ['session.run loss+grads', async () => { lastGrads = gradientsFrom(await session.run(feeds, gradNames)); }],
  ['AdamW', () => trainer.optimizer.step(lastGrads)],
];
for (const [, f] of contenders) await f();
const s = contenders.map(() => ({ wall: [] as number[], cpu: [] as number[], flt: [] as number[] }));
for (let r = 0; r < reps; r++) for (const [i, [, f]] of contenders.entries()) {
  const f0 = process.resourceUsage().minorPageFault;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await f();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  s[i].wall.push(wall); s[i].cpu.push((c.user + c.system) / 1000); s[i].flt.push(process.resourceUsage().minorPageFault - f0);
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
console.log(`${size}px ${mode}, batch ${N}, ${reps} reps, load ${loadavg()[0].toFixed(1)}`);
for (const [i, [name]] of contenders.entries()) console.log(`  ${name.padEnd(24)} wall ${med(s[i].wall).toFixed(1).padStart(7)}  cpu ${med(s[i].cpu).toFixed(1).padStart(7)}  faults ${med(s[i].flt)}  (walls ${s[i].wall.map((x) => x.toFixed(0)).join(' ')})`);
await runner.release(); await trainer.release();
