// Model-graph figures (issue: model graphs): SSIM throughput against the ssim.js package on the same
// images, and the GRPO training step time as a multiple of the policy forward at the same batch.
import { Graph } from '../lib/graph/graph.ts';
import { serialize } from '../lib/graph/onnx.ts';
import { GraphSession } from '../lib/graph/runtime.ts';
import { ssim, SSIM_LANE_RUN_BATCH, SSIM_RUN_BATCH } from '../lib/models/ssim.ts';
import { lanesFor, SessionLanes } from '../lib/models/lanes.ts';
import { rng } from '../lib/data/random.ts';
import { grpoBenchCase } from './grpo-setup.ts';
import { ssim as ssimJs } from 'ssim.js';
import { loadavg } from 'node:os';

interface Timing {
  wall: number;
  cpu: number;
}

/**
 * Interleaved timing of several contenders: one warm-up each, then `reps` rounds that run each once, so
 * the shared machine's load falls on all of them alike. Reports the median wall time and the median
 * process CPU time (user + system, over all threads) of each.
 */
async function timeSideBySide(reps: number, contenders: Array<[string, () => Promise<unknown> | unknown]>): Promise<Timing[]> {
  for (const [, f] of contenders) await f();
  const samples = contenders.map(() => ({ wall: [] as number[], cpu: [] as number[] }));
  for (let r = 0; r < reps; r++) {
    for (const [i, [, f]] of contenders.entries()) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await f();
      const wall = performance.now() - t0;
      const c = process.cpuUsage(c0);
      samples[i].wall.push(wall);
      samples[i].cpu.push((c.user + c.system) / 1000);
    }
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  return contenders.map(([label], i) => {
    const t = { wall: median(samples[i].wall), cpu: median(samples[i].cpu) };
    console.log(`  ${label}: ${t.wall.toFixed(1)} ms wall, ${t.cpu.toFixed(1)} ms CPU (medians of ${reps}, interleaved)`);
    return t;
  });
}

async function ssimGraphSession(S: number): Promise<GraphSession> {
  const g = new Graph();
  const x = g.input('x', ['N', 3, S, S]);
  const y = g.input('y', ['N', 3, S, S]);
  g.output('ssim', ssim(x, y));
  return GraphSession.create(serialize(g));
}

async function ssimThroughput(): Promise<void> {
  const N = 64;
  const S = 256;
  const r = rng(1);
  // Smooth images plus noise, as 8-bit values, shared by every implementation.
  const a8 = new Uint8Array(N * S * S * 3);
  const b8 = new Uint8Array(N * S * S * 3);
  for (let i = 0; i < a8.length; i++) {
    const x = (i / 3) % S;
    const v = 128 + 100 * Math.sin(x / 9 + Math.floor(i / (S * S * 3)));
    a8[i] = Math.max(0, Math.min(255, v));
    b8[i] = Math.max(0, Math.min(255, v + r.normal() * 20));
  }
  const toCHW = (u8: Uint8Array) => {
    const out = new Float32Array(u8.length);
    for (let n = 0; n < N; n++) for (let p = 0; p < S * S; p++) for (let c = 0; c < 3; c++) out[((n * 3 + c) * S * S) + p] = u8[(n * S * S + p) * 3 + c] / 255;
    return out;
  };
  const current = await ssimGraphSession(S);
  const feeds = { x: { data: toCHW(a8), dims: [N, 3, S, S] }, y: { data: toCHW(b8), dims: [N, 3, S, S] } };
  const rgba = (u8: Uint8Array, n: number) => {
    const d = new Uint8ClampedArray(S * S * 4);
    for (let p = 0; p < S * S; p++) {
      d.set(u8.subarray((n * S * S + p) * 3, (n * S * S + p) * 3 + 3), p * 4);
      d[p * 4 + 3] = 255;
    }
    return { data: d, width: S, height: S } as unknown as ImageData;
  };
  const pairs = Array.from({ length: N }, (_, n) => [rgba(a8, n), rgba(b8, n)] as const);
  // The scorer's lanes run one pair at a time with SSIM's plain filter (ssim.ts SSIM_LANE_RUN_BATCH); round 18's ran
  // runs of 4 with the folded one.
  const laneGraph = (fold: boolean) => {
    const g = new Graph();
    g.output('ssim', ssim(g.input('x', ['N', 3, S, S]), g.input('y', ['N', 3, S, S]), { fold }));
    return serialize(g);
  };
  const lanes = await SessionLanes.create(laneGraph(false), lanesFor());
  const foldedLanes = await SessionLanes.create(laneGraph(true), lanesFor());
  console.log(`SSIM, ${N} image pairs of ${S}x${S} RGB (same images for all; onnxruntime with its default threads, one per core):`);
  const K = SSIM_RUN_BATCH;
  const L = SSIM_LANE_RUN_BATCH;
  const per = 3 * S * S;
  const inRuns = async (session: GraphSession) => {
    const out = new Float32Array(N);
    for (let i = 0; i < N; i += K) {
      const part = (f: Float32Array) => ({ data: f.subarray(i * per, (i + K) * per), dims: [K, 3, S, S] });
      out.set((await session.run({ x: part(feeds.x.data), y: part(feeds.y.data) })).ssim.data, i);
    }
    return out;
  };
  const inLanes = async (l = lanes, step = L) => {
    const out = new Float32Array(N);
    (await l.runSlices(feeds, N, step)).forEach((f, i) => out.set(f.ssim!.data, i * step));
    return out;
  };
  const withJs = process.env.BENCH_SSIM_JS !== '0';
  const contenders: Array<[string, () => Promise<unknown> | unknown]> = [
    [`SSIM graph (plain filter), runs of ${L} pair(s) on ${lanes.lanes} lanes (what RewardScorer runs on the CPU at >= 128x128)`, () => inLanes()],
    [`SSIM graph (folded filter), runs of ${K} pairs on ${lanes.lanes} lanes (round 18's scoring)`, () => inLanes(foldedLanes, K)],
    [`SSIM graph, runs of ${K} pairs one after another on one session (the previous round's scoring)`, () => inRuns(current)],
    ['SSIM graph, all 64 pairs in one run (the issue\'s figure)', () => current.run(feeds)],
  ];
  if (withJs) {
    contenders.push(["ssim.js 'weber' (JavaScript, luminance only, downsample off)", () => {
      for (const [p, q] of pairs) ssimJs(p, q, { ssim: 'weber', downsample: false });
    }]);
  }
  const [fast, lanes4, seq, whole, weber] = await timeSideBySide(Number(process.env.BENCH_SSIM_REPS ?? 5), contenders);
  const values = (await inLanes()).join();
  const same = values === (await inLanes(foldedLanes, K)).join() && values === (await inRuns(current)).join() && values === (await current.run(feeds)).ssim.data.join();
  const met = fast.wall <= 100;
  console.log(`  RESULT ssim: ${fast.wall.toFixed(0)} ms wall, ${fast.cpu.toFixed(0)} ms CPU for ${N} pairs in runs of ${L} on ${lanes.lanes} lanes (target <= 100 ms wall): ${met ? 'MET' : 'NOT MET'} on this machine at this load (load average ${loadavg().map((v) => v.toFixed(1)).join(' ')})`);
  console.log(`  against runs of ${K} on the lanes: ${(lanes4.wall / fast.wall).toFixed(2)}x (wall), ${(lanes4.cpu / fast.cpu).toFixed(2)}x (CPU); against runs of ${K} one after another: ${(seq.wall / fast.wall).toFixed(2)}x (wall), ${(seq.cpu / fast.cpu).toFixed(2)}x (CPU); against all 64 in one run: ${(whole.wall / fast.wall).toFixed(2)}x (wall), ${(whole.cpu / fast.cpu).toFixed(2)}x (CPU); values identical: ${same}`);
  if (weber) console.log(`  ${(weber.wall / fast.wall).toFixed(1)}x ssim.js 'weber' in wall time (which computes one channel)`);
  await current.release();
  await lanes.release();
  await foldedLanes.release();
}

async function grpoStepRatio(): Promise<void> {
  const sizes = (process.env.BENCH_GRPO_SIZES ?? '64,128').split(',').map(Number);
  const N = 32;
  for (const size of sizes) for (const mode of ['scalar', 'dense'] as const) {
    const { config, params, runner, trainer, images, noise, batch } = await grpoBenchCase(size, mode, N);
    console.log(`GRPO step (${mode} advantages) vs policy forward, ${config.model.arch} width ${config.model.width} depth ${config.model.depth}, batch ${N} at ${size}x${size}:`);
    const [fwd, graph, step] = await timeSideBySide(Number(process.env.BENCH_GRPO_REPS ?? 7), [
      ['policy forward (policy.onnx)', () => runner.run(params, images, noise, N)],
      ['GRPO graph: forward + backward (train-grpo.onnx)', () => trainer.grpoForward(batch)],
      ['GRPO step: graph + AdamW update', () => trainer.grpoStep(batch)],
    ]);
    const [rw, rc] = [step.wall / fwd.wall, step.cpu / fwd.cpu];
    console.log(`  ratio (wall): graph ${(graph.wall / fwd.wall).toFixed(2)}x, full step ${rw.toFixed(2)}x the forward; (CPU): graph ${(graph.cpu / fwd.cpu).toFixed(2)}x, step ${rc.toFixed(2)}x`);
    console.log(`  RESULT grpo ${size}px ${mode}: step/forward ${rw.toFixed(2)}x wall, ${rc.toFixed(2)}x CPU (target <= 3.5x): ${rw <= 3.5 && rc <= 3.5 ? 'MET' : rw <= 3.5 || rc <= 3.5 ? 'MET in one of wall/CPU only' : 'NOT MET'} on this machine at this load`);
    await runner.release();
    await trainer.release();
  }
}

export async function run(): Promise<void> {
  const only = process.env.BENCH_ONLY;
  if (!only || only === 'ssim') await ssimThroughput();
  if (!only || only === 'grpo') await grpoStepRatio();
}
