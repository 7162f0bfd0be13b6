// The LeakyReLU gradient's forms, dx = dy * slope(y) on [32, 16, S, S] (one layer of the GRPO graph at S px), side by
// side: onnxruntime's kernel time per op (each node's fastest run after the first, from its profile), on 1 and 2
// threads, and a hash of dx's per-row sums (a form that changes values changes them; a sign of zero or a difference
// below a sum's rounding can vanish: test/graph/leaky-relu-gradient.test.ts compares dx element by element). Each form
// runs its repetitions back to back, not interleaved: take the minima as the figure. The
// special values +-0, denormals, +-inf and, with LEAKY_NAN=1, a NaN sit at the start of y (docs/performance-history/grpo-step.md,
// "Round 21: grpo21").
//
//   [LEAKY_SIZE=128] [LEAKY_REPS=8] [LEAKY_FORMS=max,clip,ceil-clip,...] [LEAKY_NAN=1] nice -n 10 node --import tsx bench/leaky-slope.ts
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Graph, type Value } from '../lib/graph/graph.ts';
import { serialize } from '../lib/graph/onnx.ts';
import { cast, clip, greater, max, mul, reduceSum, sign, where } from '../lib/graph/ops.ts';
import { GraphSession, PROFILE_ENV, readProfiles } from '../lib/graph/runtime.ts';
import { standardNormal } from '../lib/data/random.ts';

const S = Number(process.env.LEAKY_SIZE ?? 128);
const reps = Number(process.env.LEAKY_REPS ?? 8);
const shape = [32, 16, S, S];
const alpha = 0.01;
const ceil = (y: Value) => y.graph.emit('Ceil', [y], {}, [{ dtype: 'float32', shape: y.shape }])[0]!;
const forms: Record<string, (y: Value, dy: Value) => Value> = {
  'max': (y, dy) => mul(dy, max(cast(greater(y, 0), 'float32'), alpha)), // before round 21
  'clip': (y, dy) => mul(dy, clip(cast(greater(y, 0), 'float32'), alpha, 1)), // lib/graph/gradient.ts since round 21
  'ceil-clip': (y, dy) => mul(dy, clip(ceil(y), alpha, 1)), // no Greater, no Cast; NaN where y is NaN
  'where-dy': (y, dy) => where(greater(y, 0), dy, mul(dy, alpha)),
  'where-slope': (y, dy) => mul(dy, where(greater(y, 0), 1, alpha)),
  'sign': (y, dy) => mul(dy, max(sign(y), alpha)),
};
const chosen = (process.env.LEAKY_FORMS ?? Object.keys(forms).join(',')).split(',');
for (const f of chosen) if (!forms[f]) throw new Error(`LEAKY_FORMS: unknown form '${f}' (known: ${Object.keys(forms).join(', ')})`);

const n = shape.reduce((a, b) => a * b);
const y = standardNormal(n, 1);
y.set([0, -0, 1e-45, -1e-45, Infinity, -Infinity, 3e38, -0.5]);
if (process.env.LEAKY_NAN) y[8] = NaN;
const feeds = { y: { data: y, dims: shape }, dy: { data: standardNormal(n, 2), dims: shape } };

console.log(`LeakyReLU slope forms on [${shape}], ${reps} runs each, kernel minima after the first run (ms)`);
for (const threads of [1, 2]) for (const name of chosen) {
  const g = new Graph();
  const dx = forms[name]!(g.input('y', shape), g.input('dy', shape));
  g.output('s', reduceSum(dx, [1, 2, 3]));
  const dir = mkdtempSync(join(tmpdir(), 'leaky-slope-'));
  process.env[PROFILE_ENV] = dir;
  const session = await GraphSession.create(serialize(g), { intraOpThreads: threads });
  delete process.env[PROFILE_ENV];
  let hash = '';
  for (let r = 0; r < reps; r++) {
    const out = await session.run(feeds);
    if (r === 0) hash = createHash('sha256').update(out.s!.data).digest('hex').slice(0, 12);
  }
  await session.release();
  const nodes = new Map<string, { op: string; durs: number[] }>();
  for (const e of readProfiles(dir)) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const node = nodes.get(e.name) ?? { op: e.args?.op_name ?? '?', durs: [] };
    node.durs.push(e.dur / 1000);
    nodes.set(e.name, node);
  }
  rmSync(dir, { recursive: true });
  const byOp = [...nodes.values()].filter((v) => v.op !== 'ReduceSum').map((v) => [v.op, Math.min(...v.durs.slice(1))] as const);
  const total = byOp.reduce((s, [, ms]) => s + ms, 0);
  console.log(`  ${threads} thread(s) ${name.padEnd(12)} ${total.toFixed(2).padStart(6)}  (${byOp.map(([op, ms]) => `${op} ${ms.toFixed(2)}`).join(', ')})  dx ${hash}`);
}
