// The LeakyReLU VJP (lib/graph/gradient.ts) computes dx = dy * slope from the activation's output, with the slope
// built from cheap ops (round 21: Greater, Cast, Clip). Whatever the ops, dx must be where(x > 0, dy, alpha * dy) bit
// for bit, the rule the checkpoints of a seed were made with: at +-0, denormals, infinities and NaN too (NaN > 0 is
// false, so a NaN activation takes alpha), for alphas 0, 0.01, 0.2 and 1, on 1 and 2 onnxruntime threads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../../lib/graph/graph.ts';
import { gradients } from '../../lib/graph/autodiff.ts';
import { leakyRelu, mul, reduceSum } from '../../lib/graph/ops.ts';
import { serialize } from '../../lib/graph/onnx.ts';
import { GraphSession } from '../../lib/graph/runtime.ts';
import { standardNormal } from '../../lib/data/random.ts';

const specials = [0, -0, 1e-45, -1e-45, 1e-39, -1e-39, Infinity, -Infinity, NaN, 3e38, -3e38, 1, -1];
const N = 4096 + specials.length; // enough elements for onnxruntime to split an elementwise op over threads

test('the LeakyReLU gradient is where(x > 0, dy, alpha * dy) bit for bit, special values included', async () => {
  const x = Float32Array.from([...specials, ...standardNormal(N - specials.length, 1)]);
  const dy = Float32Array.from(standardNormal(N, 2));
  dy[0] = -0.5; // -0 times alpha: the sign of zero products is kept
  // 0 to 1: the Clip form; -0, 1.5 and -0.5: the Where form (the rule's branch condition is checked too)
  for (const alpha of [0, 0.01, 0.2, 1, -0, 1.5, -0.5]) {
    const g = new Graph();
    const xIn = g.input('x', [N]);
    const dyIn = g.input('dy', [N]);
    const [dx] = gradients(reduceSum(mul(leakyRelu(xIn, alpha), dyIn)), [xIn]);
    g.output('dx', dx!);
    const a = Math.fround(alpha);
    const expected = Float32Array.from(x, (v, i) => (v > 0 ? dy[i]! : Math.fround(dy[i]! * a)));
    for (const threads of [1, 2]) {
      const session = await GraphSession.create(serialize(g), { intraOpThreads: threads });
      try {
        const got = (await session.run({ x: { data: x, dims: [N] }, dy: { data: dy, dims: [N] } })).dx!.data;
        const bad = got.findIndex((v, i) => !Object.is(v, expected[i]));
        assert.equal(bad, -1, `alpha ${alpha}, ${threads} thread(s): dx[${bad}] = ${got[bad]} for x = ${x[bad]}, dy = ${dy[bad]}; expected ${expected[bad]}`);
      } finally {
        await session.release();
      }
    }
  }
});
