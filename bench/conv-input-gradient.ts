// One stride-1 3x3 conv layer's input gradient, batch 32, in the forms the GRPO graph could use
// (lib/graph/conv-gradients.ts; docs/performance-history/grpo-step.md, "Round 25: grpo25"), interleaved in one process, onnxruntime runs only:
//   conv      today's form: Conv of dY with the flipped kernel (ORT: im2col of dY, 9x its size, then GEMM)
//   shifted   from dYs (the weight gradient's operand, dYs[n,(o,kx),y,x'] = dY[n,o,y,x'-kx*dw], fed here as built):
//             a 1x1 Conv with W as [(i,ky),(o,kx)], then the vertical sum over ky by a grouped one-hot kh x 1 Conv,
//             then the crop of the padded columns
//   sliced    the same product, the vertical sum by one Pad, kh Slices and kh-1 Adds
//   product   the 1x1 Conv alone (P, Cin*kh channels); matmul: the same product as a MatMul
//   chunked+  dYs, product and vertical sum per chunk of 2 images (as the weight gradient's chunked path builds dYs),
//             concatenated; `dYs chunks` builds only the chunks' dYs (and a cheap slice of each, concatenated), so
//             chunked+ less dYs chunks is roughly what the input gradient would add inside the chunked path
//   shifted+  `shifted` with dYs built inside the graph (its whole cost where the weight gradient did not build it)
// Each dX arm's output is checked against `conv`'s (float tolerance: the sums' order differs). Round 25 measured the
// whole layer's backward with the rule in the graph too (commit 8fec1b9, since reverted: docs/performance-history/grpo-step.md).
//
//   [CIG_SIZES=64,128] [CIG_THREADS=1,2] [CIG_C=16] [CIG_REPS=7] [CIG_ARMS=shifted,product,...]
//   nice -n 10 node --import tsx bench/conv-input-gradient.ts
import { loadavg } from 'node:os';
import { Graph, type Value } from '../lib/graph/graph.ts';
import { add, concat, conv, matmul, pad, reshape, slice, transpose } from '../lib/graph/ops.ts';
import { serialize } from '../lib/graph/onnx.ts';
import { GraphSession, type Feeds } from '../lib/graph/runtime.ts';
import { standardNormal } from '../lib/data/random.ts';

const sizes = (process.env.CIG_SIZES ?? '64,128').split(',').map(Number);
const threadCounts = (process.env.CIG_THREADS ?? '1,2').split(',').map(Number);
const C = Number(process.env.CIG_C ?? 16);
const reps = Number(process.env.CIG_REPS ?? 7);
const N = 32;
const K = 3;
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

function oneHot(g: Graph, c: number, k: number, tap: (t: number) => number, dims: (c: number, k: number) => number[]): Value {
  const data = new Float32Array(c * k * k);
  for (let ch = 0; ch < c; ch++) for (let t = 0; t < k; t++) data[(ch * k + t) * k + tap(t)] = 1;
  return g.constant(data, dims(c, k));
}

/** dYs from dY: a 1 x k one-hot grouped Conv padded by k-1 each side (as lib/graph/conv-gradients.ts builds it). */
function shiftedDy(dy: Value): Value {
  const w = oneHot(dy.graph, C, K, (t) => K - 1 - t, (c, k) => [c * k, 1, 1, k]);
  return conv(dy, w, undefined, { pads: [0, K - 1, 0, K - 1], group: C });
}

/** P[n,(i,ky),y,x'] = sum_(o,kx) W[o,i,ky,kx] dYs[n,(o,kx),y,x']. */
function product(dys: Value, w: Value): Value {
  return conv(dys, reshape(transpose(w, [1, 2, 0, 3]), [C * K, C * K, 1, 1]));
}

/** dX[n,i,y,x] = sum_ky P[n,(i,ky),y+1-ky,x+1] (pads 1, dilation 1) by a grouped one-hot kh x 1 Conv and a Slice. */
function verticalByConv(p: Value, h: number, w2: number): Value {
  void h;
  const v = oneHot(p.graph, C, K, (t) => K - 1 - t, (c, k) => [c, k, k, 1]);
  const summed = conv(p, v, undefined, { pads: [K - 2, 0, K - 2, 0], group: C });
  return slice(summed, [1], [w2 - 1], [3]);
}

function verticalBySlices(p: Value, h: number, w2: number): Value {
  const padded = pad(reshape(p, [N, C, K, h, w2]), [0, 0, 0, K - 2, 0], [0, 0, 0, K - 2, 0]);
  let sum: Value | null = null;
  for (let ky = 0; ky < K; ky++) {
    const r = K - 1 - ky;
    const term = reshape(slice(padded, [ky, r, 1], [ky + 1, r + h, w2 - 1], [2, 3, 4]), [p.shape[0]!, C, h, w2 - 2]);
    sum = sum ? add(sum, term) : term;
  }
  return sum!;
}

/** `f` on the batch in 16 chunks of 2 images (as the weight gradient's chunked path runs), concatenated. */
function byChunks(dy: Value, f: (chunk: Value) => Value): Value {
  const parts: Value[] = [];
  for (let i = 0; i < 16; i++) parts.push(f(slice(dy, [2 * i], [2 * i + 2], [0])));
  return concat(parts, 0);
}

type Arm = { label: string; dx?: false; build: (g: Graph, dy: Value, dys: Value, w: Value, h: number, w2: number) => Value };
const allArms: Arm[] = [
  {
    label: 'conv (main)',
    build: (g, dy, _dys, w) => {
      const idx = g.ints([2, 1, 0]);
      const flip = (v: Value, axis: number) => g.emit('Gather', [v, idx], { axis }, [{ dtype: 'float32', shape: v.shape }])[0];
      return conv(dy, transpose(flip(flip(w, 2), 3), [1, 0, 2, 3]), undefined, { pads: [1, 1, 1, 1] });
    },
  },
  { label: 'shifted', build: (_g, _dy, dys, w, h, w2) => verticalByConv(product(dys, w), h, w2) },
  { label: 'sliced', build: (_g, _dy, dys, w, h, w2) => verticalBySlices(product(dys, w), h, w2) },
  { label: 'product', dx: false, build: (_g, _dy, dys, w) => product(dys, w) },
  { label: 'matmul', dx: false, build: (_g, _dy, dys, w, h, w2) => matmul(reshape(transpose(w, [1, 2, 0, 3]), [C * K, C * K]), reshape(dys, [N, C * K, h * w2])) },
  { label: 'chunked+', build: (_g, dy, _dys, w, h, w2) => byChunks(dy, (c) => verticalByConv(product(shiftedDy(c), w), h, w2)) },
  { label: 'dYs chunks', dx: false, build: (_g, dy, _dys, _w, h, w2) => byChunks(dy, (c) => slice(shiftedDy(c), [0, 1], [C, w2 - 1], [1, 3])) },
  { label: 'shifted+', build: (_g, dy, _dys, w, h, w2) => verticalByConv(product(shiftedDy(dy), w), h, w2) },
];

const wanted = process.env.CIG_ARMS?.split(',');
const arms = wanted ? allArms.filter((a) => a.label === 'conv (main)' || wanted.includes(a.label)) : allArms;
console.log(`conv input gradient, ${C}->${C} 3x3 pads 1, batch ${N}, ${reps} rounds; load ${loadavg().map((v) => v.toFixed(1)).join(' ')}`);
for (const size of sizes) {
  const w2 = size + K - 1;
  const dyData = standardNormal(N * C * size * size, 1);
  const wData = standardNormal(C * C * K * K, 2);
  const g0 = new Graph();
  g0.output('dys', shiftedDy(g0.input('dy', [N, C, size, size])));
  const s0 = await GraphSession.create(serialize(g0), { intraOpThreads: 1 });
  const dysData = (await s0.run({ dy: { data: dyData, dims: [N, C, size, size] } })).dys!.data;
  await s0.release();
  const feeds: Feeds = {
    dy: { data: dyData, dims: [N, C, size, size] },
    dys: { data: dysData, dims: [N, C * K, size, w2] },
    w: { data: wData, dims: [C, C, K, K] },
  };
  for (const threads of threadCounts) {
    const runs = await Promise.all(arms.map(async (arm) => {
      const g = new Graph();
      const out = arm.build(g, g.input('dy', [N, C, size, size]), g.input('dys', [N, C * K, size, w2]), g.input('w', [C, C, K, K]), size, w2);
      g.output('dx', out);
      const session = await GraphSession.create(serialize(g), { intraOpThreads: threads });
      const names = new Set(g.inputs.map((v) => v.name));
      const armFeeds: Feeds = Object.fromEntries(Object.entries(feeds).filter(([k]) => names.has(k)));
      return { arm, session, feeds: armFeeds, cpu: [] as number[], wall: [] as number[], out: null as Float32Array | null };
    }));
    for (let r = 0; r < reps + 1; r++) for (let j = 0; j < runs.length; j++) {
      const run = runs[(j + r) % runs.length]!;
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const out = await run.session.run(run.feeds);
      const wall = performance.now() - t0;
      const c = process.cpuUsage(c0);
      if (r === 0) run.out = out.dx!.data;
      else { run.cpu.push((c.user + c.system) / 1000); run.wall.push(wall); }
    }
    const ref = runs[0]!.out!;
    let scale = 0;
    for (const v of ref) scale = Math.max(scale, Math.abs(v));
    console.log(`${size} px, ${threads} thread${threads === 1 ? '' : 's'}:`);
    for (const run of runs) {
      let err = 0;
      for (let i = 0; i < ref.length; i++) err = Math.max(err, Math.abs(run.out![i]! - ref[i]!));
      if (run.arm.dx !== false && !(err / scale < 1e-5)) throw new Error(`${run.arm.label}: dX differs from conv's by ${err} (scale ${scale})`);
      const check = run.arm.dx === false ? '' : `; max |dx - conv's| / scale ${(err / scale).toExponential(1)}`;
      const spread = `${Math.min(...run.cpu).toFixed(1)}-${Math.max(...run.cpu).toFixed(1)}`;
      console.log(`  ${run.arm.label.padEnd(12)} CPU ${median(run.cpu).toFixed(1).padStart(6)} ms (${spread}), wall ${median(run.wall).toFixed(1).padStart(6)} ms${check}`);
    }
    for (const run of runs) await run.session.release();
  }
}
console.log(`load after: ${loadavg().map((v) => v.toFixed(1)).join(' ')}`);
