// Probe: what of the GRPO step is not the graph's arithmetic (grpo19). Interleaved contenders at one size/mode:
// the policy forward, the trainer's GRPO graph run, the full step, the raw session run with prebuilt feeds,
// the raw run fetching only loss + gradients, AdamW alone. Prints wall, CPU and minor page faults (medians).
//   OVH_SIZE=128 OVH_MODE=dense OVH_REPS=5 node --import tsx bench/grpo-overhead.ts
import { loadConfig } from '../lib/config/index.ts';
import { initPolicyParams } from '../lib/models/policy.ts';
import { policySpecOf } from '../lib/models/bundle.ts';
import { PolicyRunner } from '../lib/models/runner.ts';
import { PolicyTrainer } from '../lib/models/trainer.ts';
import { gradientsFrom, paramFeeds, scalarFeed } from '../lib/models/feeds.ts';
import { standardNormal } from '../lib/data/random.ts';
import { loadavg } from 'node:os';

const size = Number(process.env.OVH_SIZE ?? 128);
const mode = (process.env.OVH_MODE ?? 'dense') as 'scalar' | 'dense';
const reps = Number(process.env.OVH_REPS ?? 5);
const N = 32;
const config = loadConfig(undefined, [`data.size=${size}`, `grpo.advantageMode=${mode}`]);
const pix = N * 3 * size * size;
const params = initPolicyParams(policySpecOf(config), 0);
for (const p of params.values()) if (p.data.every((v) => v === 0) && p.shape.length) p.data.set(standardNormal(p.data.length, 3).map((v) => v * 0.01));
const runner = await PolicyRunner.create(config);
const trainer = PolicyTrainer.create(config, params);
const images = Float32Array.from(standardNormal(pix, 1), (v) => 0.5 + 0.1 * v);
const noise = standardNormal(pix, 2);
const roll = await runner.run(params, images, noise, N);
const dense = mode === 'dense';
const batch = {
  n: N, images, actions: roll.action, logpOld: dense ? roll.logpMap : roll.logp, advantages: standardNormal(N, 4),
  advantageMap: dense ? standardNormal(N * 3 * (size - 10) * (size - 10), 5) : undefined, refMean: roll.mean,
};
const session = await trainer.grpo.session('plain');
const dims = [N, 3, size, size];
const m = size - 10;
const feeds = {
  ...paramFeeds(params), image: { data: images, dims }, action: { data: batch.actions, dims },
  logp_old: { data: batch.logpOld, dims: dense ? dims : [N] }, advantage: { data: batch.advantages, dims: [N] },
  ref_mean: { data: batch.refMean, dims }, clip_low: scalarFeed(0.2), clip_high: scalarFeed(0.28), beta: scalarFeed(0.01),
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
