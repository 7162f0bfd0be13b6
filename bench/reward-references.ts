// The reward graph on one thread, a default GRPO batch (32 candidates, 4 groups of 8 sharing a reference):
// the plain graph in slices of SSIM_RUN_BATCH (the scorer's one-lane runs before round 13) against the graph that
// encodes each distinct reference once (sharedReferences), in slices of 4, SMALL_RUN_BATCH and 32; every arm's
// ssim and clip_cos checked byte for byte against the plain one first.
//   node --import tsx bench/reward-references.ts [size, default 32] [threads, default 1]
import { rewardModel } from '../lib/models/bundle.ts';
import { GraphSession } from '../lib/graph/runtime.ts';
import { rewardRowFeeds } from '../lib/models/feeds.ts';
import { SMALL_RUN_BATCH } from '../lib/models/scorer.ts';
import { SSIM_RUN_BATCH } from '../lib/models/ssim.ts';
import { rng } from '../lib/data/random.ts';
import type { Fetches } from '../lib/graph/runtime.ts';

async function main(): Promise<void> {
  const S = Number(process.argv[2] ?? 32);
  const threads = Number(process.argv[3] ?? 1);
  const plain = await GraphSession.create((await rewardModel({ height: S, width: S })).bytes, { device: 'cpu', intraOpThreads: threads });
  const shared = await GraphSession.create((await rewardModel({ height: S, width: S }, undefined, { sharedReferences: true })).bytes, { device: 'cpu', intraOpThreads: threads });
  const per = 3 * S * S;
  const [n, G] = [32, 8];
  const r = rng(3);
  const cand = new Float32Array(n * per).map(() => r.float());
  const ref = new Float32Array(n * per);
  for (let g = 0; g < n / G; g++) {
    const img = new Float32Array(per).map(() => r.float());
    for (let k = 0; k < G; k++) ref.set(img, (g * G + k) * per);
  }
  const dims = (m: number) => [m, 3, S, S];
  const run = async (session: GraphSession, step: number, rows: boolean): Promise<Fetches[]> => {
    const outs: Fetches[] = [];
    for (let s = 0; s < n; s += step) {
      const c = cand.subarray(s * per, (s + step) * per);
      const f = ref.subarray(s * per, (s + step) * per);
      outs.push(await session.run({ candidate: { data: c, dims: dims(step) }, reference: { data: f, dims: dims(step) }, ...(rows ? rewardRowFeeds(f, step) : {}) }, ['ssim', 'clip_cos']));
    }
    return outs;
  };
  const arms: Array<[string, () => Promise<Fetches[]>]> = [
    [`plain, slices of ${SSIM_RUN_BATCH} (before)`, () => run(plain, SSIM_RUN_BATCH, false)],
    ...[SSIM_RUN_BATCH, SMALL_RUN_BATCH, 32].map((step): [string, () => Promise<Fetches[]>] => [`shared references, slices of ${step}${step === SMALL_RUN_BATCH ? ' (now)' : ''}`, () => run(shared, step, true)]),
  ];
  const cat = (outs: Fetches[], k: string) => Buffer.concat(outs.map((o) => Buffer.from(o[k]!.data.buffer, o[k]!.data.byteOffset, o[k]!.data.byteLength)));
  const base = await arms[0]![1]();
  for (const [name, f] of arms) {
    const o = await f();
    if (!cat(o, 'ssim').equals(cat(base, 'ssim')) || !cat(o, 'clip_cos').equals(cat(base, 'clip_cos'))) throw new Error(`${name}: other bytes than the plain graph's`);
  }
  const cpu: number[][] = arms.map(() => []);
  for (let rep = 0; rep < 5; rep++) {
    for (const [k, [, f]] of arms.entries()) {
      const c0 = process.cpuUsage();
      for (let i = 0; i < 4; i++) await f();
      const c = process.cpuUsage(c0);
      cpu[k]!.push((c.user + c.system) / 4000);
    }
  }
  const median = (x: number[]) => [...x].sort((a, b) => a - b)[Math.floor(x.length / 2)]!;
  console.log(`reward graph, ${S} px, ${threads} thread(s), ${n} candidates in ${n / G} groups; bytes equal to the plain graph's: yes`);
  for (const [k, [name]] of arms.entries()) console.log(`  ${name.padEnd(42)} ${median(cpu[k]!).toFixed(1)} ms CPU per batch (median of 5)`);
  await plain.release();
  await shared.release();
}

await main();
