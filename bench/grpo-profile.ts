// onnxruntime's per-operator profile of train-grpo.onnx (or policy.onnx): per op type, the sum over its nodes of each
// node's fastest run after the first (the first run also faults in the arena's memory), and optionally every node
// slower than 0.8 ms with its input and output shapes, in execution order.
//
//   [GRPO_PROFILE_GRAPH=grpo|policy] [GRPO_PROFILE_SIZE=128] [GRPO_PROFILE_MODE=dense] [GRPO_PROFILE_THREADS=1]
//   [GRPO_PROFILE_REPS=3] [GRPO_PROFILE_NODES=1] nice -n 10 node --import tsx bench/grpo-profile.ts
//
// GRPO_PROFILE_THREADS=1,2 profiles one session per thread count, their runs interleaved (each round in turn starts
// with another), and adds a table per op type: each count's sum and the first count's over it (the speedup; round 21).
// The kernel times are wall times: on a loaded machine take them as shares, and compare minima of several reps.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../lib/config/index.ts';
import { grpoModel, initialParamsWithNoiseOf, policyModel } from '../lib/models/bundle.ts';
import { standardNormal } from '../lib/data/random.ts';
import { GraphSession, PROFILE_ENV, readProfiles, type Feed, type Feeds, type ProfileEvent } from '../lib/graph/runtime.ts';

const which = process.env.GRPO_PROFILE_GRAPH ?? 'grpo';
const size = Number(process.env.GRPO_PROFILE_SIZE ?? 128);
const mode = (process.env.GRPO_PROFILE_MODE ?? 'dense') as 'scalar' | 'dense';
const threadCounts = (process.env.GRPO_PROFILE_THREADS ?? '1').split(',').map(Number);
if (threadCounts.some((n) => !Number.isInteger(n) || n < 1) || new Set(threadCounts).size !== threadCounts.length) {
  throw new Error(`GRPO_PROFILE_THREADS=${process.env.GRPO_PROFILE_THREADS}: distinct whole numbers >= 1, comma-separated`);
}
const reps = Number(process.env.GRPO_PROFILE_REPS ?? 3);
const N = 32;
const config = loadConfig(undefined, [`data.size=${size}`, `grpo.advantageMode=${mode}`]);
// run.seed 0 (the default), the zero tensors noised as gpu-check's inputs are (before round 17: one seed, 3, for all)
const params = initialParamsWithNoiseOf(config);
const t = (d: Float32Array, s: readonly number[]): Feed => ({ data: d, dims: [...s] });
const pix = N * 3 * size * size;
const dims = [N, 3, size, size];
const feeds: Feeds = {};
for (const [k, v] of params) feeds[`param.${k}`] = t(v.data, v.shape);
const image = Float32Array.from(standardNormal(pix, 1), (v) => 0.5 + 0.1 * v);
const noise = standardNormal(pix, 2);
feeds.image = t(image, dims);
let model: Uint8Array;
if (which === 'grpo') {
  model = grpoModel(config);
  const m = size - 10;
  Object.assign(feeds, {
    action: t(Float32Array.from(image, (v, i) => v + 0.05 * noise[i]), dims),
    logp_old: mode === 'dense' ? t(new Float32Array(pix).fill(-1), dims) : t(new Float32Array(N).fill(-1), [N]),
    advantage: t(standardNormal(N, 4), [N]),
    ref_mean: t(image, dims),
    clip_low: t(Float32Array.of(0.2), []),
    clip_high: t(Float32Array.of(0.2), []),
    dual_clip: t(Float32Array.of(3), []),
    beta: t(Float32Array.of(0.01), []),
  });
  if (mode === 'dense') feeds.advantage_map = t(standardNormal(N * 3 * m * m, 5), [N, 3, m, m]);
} else {
  model = policyModel(config);
  feeds.noise = t(noise, dims);
}

const sessions: Array<{ threads: number; dir: string; session: GraphSession }> = [];
for (const threads of threadCounts) {
  const dir = mkdtempSync(join(tmpdir(), 'grpo-profile-'));
  process.env[PROFILE_ENV] = dir; // the session below profiles itself into dir (lib/graph/runtime.ts)
  sessions.push({ threads, dir, session: await GraphSession.create(model, { intraOpThreads: threads }) });
  delete process.env[PROFILE_ENV];
}
for (let i = 0; i < reps + 1; i++) for (let j = 0; j < sessions.length; j++) await sessions[(i + j) % sessions.length]!.session.run(feeds);
const byThreads = new Map<number, Map<string, { ms: number; count: number }>>();
const medianRun = new Map<number, number>();
for (const { threads, dir, session } of sessions) {
  await session.release(); // writes the profile
  const events = readProfiles(dir);
  if (!events.length) throw new Error(`no profile written in ${dir}`);
  rmSync(dir, { recursive: true });
  byThreads.set(threads, report(events, threads));
}
if (sessions.length > 1) {
  const [base, ...others] = threadCounts;
  const ops = [...byThreads.get(base!)!].sort((a, b) => b[1].ms - a[1].ms).map(([op]) => op);
  const sum = (t: number, op?: string) => op ? byThreads.get(t)!.get(op)?.ms ?? 0 : [...byThreads.get(t)!.values()].reduce((s, o) => s + o.ms, 0);
  console.log(`\n| op type | nodes | ${threadCounts.map((t) => `${t} thread(s), ms`).join(' | ')} | ${others.map((t) => `${base} / ${t}`).join(' | ')} |`);
  console.log(`| --- | --- | ${threadCounts.map(() => '---').join(' | ')} | ${others.map(() => '---').join(' | ')} |`);
  const run = threadCounts.map((t) => medianRun.get(t)!);
  console.log(`| model_run, median after the first | | ${run.map((v) => v.toFixed(1)).join(' | ')} | ${run.slice(1).map((v) => `${(run[0]! / v).toFixed(2)}x`).join(' | ')} |`);
  for (const op of [undefined, ...ops]) {
    if (op && sum(base!, op) < 0.5) continue;
    const cells = threadCounts.map((t) => sum(t, op).toFixed(1));
    const speedups = others.map((t) => `${(sum(base!, op) / sum(t, op)).toFixed(2)}x`);
    console.log(`| ${op ?? 'all nodes'} | ${op ? byThreads.get(base!)!.get(op)!.count : ''} | ${cells.join(' | ')} | ${speedups.join(' | ')} |`);
  }
}

function report(events: ProfileEvent[], threads: number): Map<string, { ms: number; count: number }> {
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').map((e) => e.dur / 1000);
  const later = runs.slice(1).sort((a, b) => a - b);
  medianRun.set(threads, later[Math.floor(later.length / 2)] ?? runs[0]!);
  console.log(`${which} ${size}px ${mode}, batch ${N}, ${threads} thread(s): model_run ${runs.map((r) => r.toFixed(0)).join(', ')} ms`);
  // Outside the kernels, per run: model_run (written after its nodes' events) less the sum of its nodes' kernel times.
  const outside: number[] = [];
  let kernels = 0;
  for (const e of events) {
    if (e.cat === 'Node' && e.name.endsWith('_kernel_time')) kernels += e.dur / 1000;
    if (e.cat === 'Session' && e.name === 'model_run') {
      outside.push(e.dur / 1000 - kernels);
      kernels = 0;
    }
  }
  const kernelCount = new Set(events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time')).map((e) => e.name)).size;
  console.log(`  outside the kernels (model_run less its nodes' kernel times): ${outside.map((r) => r.toFixed(1)).join(', ')} ms (${kernelCount} nodes)`);
  const nodes = new Map<string, { op: string; durs: number[]; first: ProfileEvent }>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const n = nodes.get(e.name) ?? { op: e.args?.op_name ?? '?', durs: [], first: e };
    n.durs.push(e.dur / 1000);
    nodes.set(e.name, n);
  }
  const fastest = (durs: number[]) => Math.min(...(durs.length > 1 ? durs.slice(1) : durs));
  const byOp = new Map<string, { ms: number; count: number }>();
  for (const n of nodes.values()) {
    const o = byOp.get(n.op) ?? { ms: 0, count: 0 };
    o.ms += fastest(n.durs);
    o.count++;
    byOp.set(n.op, o);
  }
  const total = [...byOp.values()].reduce((s, o) => s + o.ms, 0);
  console.log(`sum of each node's fastest run: ${total.toFixed(0)} ms over ${nodes.size} nodes`);
  for (const [op, o] of [...byOp].sort((a, b) => b[1].ms - a[1].ms)) if (o.ms >= 0.1) console.log(`  ${op.padEnd(16)} ${o.ms.toFixed(1).padStart(7)} ms  ${o.count} nodes`);
  if (process.env.GRPO_PROFILE_NODES) {
    const shapes = (s?: Array<Record<string, number[]>>) => (s ?? []).map((x) => `[${Object.values(x)[0]}]`).join(' ');
    for (const [name, n] of nodes) {
      const ms = fastest(n.durs);
      if (ms > 0.8) console.log(`  ${ms.toFixed(1).padStart(7)} ${n.op.padEnd(14)} ${name.replace(/_kernel_time$/, '').padEnd(36)} ${shapes(n.first.args?.input_type_shape)} -> ${shapes(n.first.args?.output_type_shape)}`);
    }
  }
  return byOp;
}
