// The GRPO graph with its weight gradients' batch in chunks (lib/graph/conv-gradients.ts, CHUNKS) against the
// whole-batch form (count 1: the graph before round 19), in one process: every output byte-equal to count 1's, and
// the graph's CPU and wall time, the arms interleaved round by round (each round in turn starts with another arm),
// beside the policy forward. onnxruntime session runs only (docs/performance-history/grpo-step.md, "Round 19: grpo19").
//
//   [CHUNKS_COUNTS=1,16,32] [CHUNKS_SIZES=64,128] [CHUNKS_MODES=dense] [CHUNKS_THREADS=0] [CHUNKS_REPS=7]
//   [CHUNKS_MIN_BYTES=1048576] nice -n 10 node --import tsx bench/grpo-chunks.ts
import { loadavg } from 'node:os';
import { createHash } from 'node:crypto';
import { loadConfig } from '../lib/config/index.ts';
import { grpoModel, initialParamsWithNoiseOf, policyModel } from '../lib/models/bundle.ts';
import { CHUNKS } from '../lib/graph/conv-gradients.ts';
import { GraphSession, type Feeds } from '../lib/graph/runtime.ts';
import { standardNormal } from '../lib/data/random.ts';
import { paramFeeds } from '../lib/models/feeds.ts';

const counts = (process.env.CHUNKS_COUNTS ?? '1,16,32').split(',').map(Number);
const sizes = (process.env.CHUNKS_SIZES ?? '64,128').split(',').map(Number);
const modes = (process.env.CHUNKS_MODES ?? 'dense').split(',') as Array<'scalar' | 'dense'>;
const threads = Number(process.env.CHUNKS_THREADS ?? 0);
const reps = Number(process.env.CHUNKS_REPS ?? 7);
if (process.env.CHUNKS_MIN_BYTES) CHUNKS.minBytes = Number(process.env.CHUNKS_MIN_BYTES);
const N = 32;
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const digest = (out: Record<string, { data: Float32Array }>) => {
  const h = createHash('sha256');
  for (const k of Object.keys(out).sort()) h.update(k).update(out[k]!.data);
  return h.digest('hex').slice(0, 16);
};

console.log(`GRPO graph by weight-gradient chunks ${counts.join(', ')} (min ${CHUNKS.minBytes} B per image); batch ${N}, ${threads || 'default'} threads, ${reps} rounds; load ${loadavg().map((v) => v.toFixed(1)).join(' ')}`);
for (const size of sizes) for (const mode of modes) {
  const config = loadConfig(undefined, [`data.size=${size}`, `grpo.advantageMode=${mode}`]);
  const params = initialParamsWithNoiseOf(config);
  const dims = [N, 3, size, size];
  const pix = N * 3 * size * size;
  const m = size - 10;
  const image = Float32Array.from(standardNormal(pix, 1), (v) => 0.5 + 0.1 * v);
  const noise = standardNormal(pix, 2);
  const action = Float32Array.from(image, (v, i) => v + 0.05 * noise[i]!);
  const feeds: Feeds = paramFeeds(params);
  const policyFeeds: Feeds = { ...feeds, image: { data: image, dims }, noise: { data: noise, dims } };
  Object.assign(feeds, {
    image: { data: image, dims }, action: { data: action, dims },
    logp_old: mode === 'dense' ? { data: new Float32Array(pix).fill(-1), dims } : { data: new Float32Array(N).fill(-1), dims: [N] },
    advantage: { data: standardNormal(N, 4), dims: [N] }, ref_mean: { data: image, dims },
    clip_low: { data: Float32Array.of(0.2), dims: [] }, clip_high: { data: Float32Array.of(0.2), dims: [] }, dual_clip: { data: Float32Array.of(3), dims: [] }, beta: { data: Float32Array.of(0.01), dims: [] },
    ...(mode === 'dense' ? { advantage_map: { data: standardNormal(N * 3 * m * m, 5), dims: [N, 3, m, m] } } : {}),
  });
  const arms: Array<{ label: string; session: GraphSession; feeds: Feeds; wall: number[]; cpu: number[] }> = [];
  arms.push({ label: 'policy forward', session: await GraphSession.create(policyModel(config), { intraOpThreads: threads }), feeds: policyFeeds, wall: [], cpu: [] });
  for (const c of counts) {
    CHUNKS.count = c;
    arms.push({ label: `GRPO graph, ${c} chunk${c === 1 ? '' : 's'}`, session: await GraphSession.create(grpoModel(config), { intraOpThreads: threads }), feeds, wall: [], cpu: [] });
  }
  const digests = new Map<string, string>();
  for (let r = 0; r < reps + 1; r++) for (let j = 0; j < arms.length; j++) {
    const arm = arms[(j + r) % arms.length]!;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const out = await arm.session.run(arm.feeds);
    const wall = performance.now() - t0;
    const c = process.cpuUsage(c0);
    if (r === 0) digests.set(arm.label, digest(out));
    else { arm.wall.push(wall); arm.cpu.push((c.user + c.system) / 1000); }
  }
  const fwd = arms[0]!;
  console.log(`${size}px ${mode}:`);
  for (const a of arms) {
    const ratio = a === fwd ? '' : `  graph/forward ${(median(a.cpu) / median(fwd.cpu)).toFixed(2)}x CPU, ${(median(a.wall) / median(fwd.wall)).toFixed(2)}x wall`;
    console.log(`  ${a.label.padEnd(22)} CPU ${median(a.cpu).toFixed(0).padStart(5)} ms (min ${Math.min(...a.cpu).toFixed(0)}), wall ${median(a.wall).toFixed(0).padStart(5)} ms (min ${Math.min(...a.wall).toFixed(0)})${ratio}`);
  }
  const grpo = arms.slice(1).map((a) => digests.get(a.label));
  console.log(`  every output of the GRPO graphs byte-equal to 1 chunk's: ${grpo.every((d) => d === grpo[0])} (${[...new Set(grpo)].join(', ')})`);
  for (const a of arms) await a.session.release();
}
console.log(`load after: ${loadavg().map((v) => v.toFixed(1)).join(' ')}`);
