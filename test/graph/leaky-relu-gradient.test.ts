// The LeakyReLU VJP (lib/graph/gradient.ts) computes dx = dy * slope from the activation's output, with the slope
// built from cheap ops (round 22: Ceil and Clip for 0 < alpha <= 1; Greater, Cast and Clip for alpha +0; Where
// otherwise). Whatever the ops, dx must be where(x > 0, dy, alpha * dy) bit for bit, the rule the checkpoints of a seed
// were made with: at +-0, denormals, infinities and +-3e38 too, on 1 and 2 onnxruntime threads. The one documented
// exception: for alpha > 0, dx is NaN where x is NaN (ceil(NaN) is NaN) where the rule gives alpha * dy; a step with
// a NaN activation is never applied (test/models/trainer.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../../lib/graph/graph.ts';
import { gradients } from '../../lib/graph/autodiff.ts';
import { leakyRelu, mul, reduceSum } from '../../lib/graph/ops.ts';
import { serialize } from '../../lib/graph/onnx.ts';
import { GraphSession } from '../../lib/graph/runtime.ts';
import { standardNormal } from '../../lib/data/random.ts';

const specials = [0, -0, 1e-45, -1e-45, 1e-39, -1e-39, 1e-38, -1e-38, Infinity, -Infinity, NaN, 3e38, -3e38, 1, -1, 0.5, -0.5, 1.5, -1.5];
const show = (v: number | undefined): string => (Object.is(v, -0) ? '-0' : String(v));
const N = 4096 + specials.length; // enough elements for onnxruntime to split an elementwise op over threads

test('the LeakyReLU gradient is where(x > 0, dy, alpha * dy) bit for bit, special values included; NaN where x is NaN for alpha > 0', async () => {
  const x = Float32Array.from([...specials, ...standardNormal(N - specials.length, 1)]);
  const dy = Float32Array.from(standardNormal(N, 2));
  dy[0] = -0.5; // +0 and -0 times a negative dy: the sign of zero products is kept
  dy[1] = -0.5;
  // > 0: the Ceil form (1e-45 a denormal slope); 0 and 1e-50 (float32 +0): the Greater form; -0, 1.5, -0.5: Where
  for (const alpha of [0.01, 0.2, 1, 1e-45, 0, 1e-50, -0, 1.5, -0.5]) {
    const g = new Graph();
    const xIn = g.input('x', [N]);
    const dyIn = g.input('dy', [N]);
    const [dx] = gradients(reduceSum(mul(leakyRelu(xIn, alpha), dyIn)), [xIn]);
    g.output('dx', dx!);
    const a = Math.fround(alpha);
    const nanAtNan = a > 0 && a <= 1;
    const expected = Float32Array.from(x, (v, i) => (v > 0 ? dy[i]! : Number.isNaN(v) && nanAtNan ? NaN : Math.fround(dy[i]! * a)));
    for (const threads of [1, 2]) {
      const session = await GraphSession.create(serialize(g), { intraOpThreads: threads });
      try {
        const got = (await session.run({ x: { data: x, dims: [N] }, dy: { data: dy, dims: [N] } })).dx!.data;
        const bad = got.findIndex((v, i) => !Object.is(v, expected[i]));
        assert.equal(bad, -1, `alpha ${show(alpha)}, ${threads} thread(s): dx[${bad}] = ${show(got[bad])} for x = ${show(x[bad])}, dy = ${dy[bad]}; expected ${show(expected[bad])}`);
      } finally {
        await session.release();
      }
    }
  }
});
