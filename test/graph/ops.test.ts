// Every differentiable op's VJP against central finite differences (through onnxruntime).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as op from '../../lib/graph/ops.ts';
import { gradCheck, type CheckInput } from './gradcheck.ts';
import type { Graph, Value } from '../../lib/graph/graph.ts';

const awayFromZero = (_i: number, r: () => number) => (r() < 0.5 ? -1 : 1) * (0.2 + r());
const positive = (_i: number, r: () => number) => 0.5 + r();

interface Case {
  name: string;
  inputs: CheckInput[];
  f: (g: Graph, xs: Value[]) => Value;
  tol?: number;
  eps?: number;
}

const cases: Case[] = [
  { name: 'Add (broadcast)', inputs: [{ name: 'a', shape: ['N', 3, 4] }, { name: 'b', shape: [3, 1] }], f: (_g, [a, b]) => op.add(a, b) },
  { name: 'Sub (broadcast)', inputs: [{ name: 'a', shape: [4] }, { name: 'b', shape: ['N', 3, 4] }], f: (_g, [a, b]) => op.sub(a, b) },
  { name: 'Mul (broadcast)', inputs: [{ name: 'a', shape: [2, 3, 1] }, { name: 'b', shape: [1, 5] }], f: (_g, [a, b]) => op.mul(a, b) },
  { name: 'Div', inputs: [{ name: 'a', shape: [2, 3] }, { name: 'b', shape: [2, 3], init: positive }], f: (_g, [a, b]) => op.div(a, b) },
  { name: 'Pow (both)', inputs: [{ name: 'a', shape: [2, 3], init: positive }, { name: 'p', shape: [1], init: positive }], f: (_g, [a, p]) => op.pow(a, p) },
  // An int64 exponent (valid ONNX; torch exports x ** 3 this way): the rule must not mix int64 and float.
  { name: 'Pow (int64 exponent)', inputs: [{ name: 'a', shape: [2, 3] }], f: (g, [a]) => op.pow(a, g.constant([3], [1], 'int64')) },
  { name: 'Min', inputs: [{ name: 'a', shape: [3, 4] }, { name: 'b', shape: [4] }], f: (_g, [a, b]) => op.min(a, b) },
  { name: 'Max', inputs: [{ name: 'a', shape: [3, 4] }, { name: 'b', shape: [3, 4] }], f: (_g, [a, b]) => op.max(a, b) },
  { name: 'Where', inputs: [{ name: 'a', shape: [3, 4] }, { name: 'b', shape: [4] }], f: (_g, [a, b]) => op.where(op.greater(a, 0), a, b) },
  { name: 'Neg', inputs: [{ name: 'x', shape: [5] }], f: (_g, [x]) => op.neg(x) },
  { name: 'Relu', inputs: [{ name: 'x', shape: [2, 8], init: awayFromZero }], f: (_g, [x]) => op.relu(x) },
  { name: 'LeakyRelu', inputs: [{ name: 'x', shape: [2, 8], init: awayFromZero }], f: (_g, [x]) => op.leakyRelu(x, 0.1) },
  { name: 'Sigmoid', inputs: [{ name: 'x', shape: [2, 8] }], f: (_g, [x]) => op.sigmoid(x) },
  { name: 'Tanh', inputs: [{ name: 'x', shape: [2, 8] }], f: (_g, [x]) => op.tanh(x) },
  { name: 'SiLU', inputs: [{ name: 'x', shape: [2, 8] }], f: (_g, [x]) => op.silu(x) },
  { name: 'Exp', inputs: [{ name: 'x', shape: [2, 8] }], f: (_g, [x]) => op.exp(x) },
  { name: 'Log', inputs: [{ name: 'x', shape: [2, 8], init: positive }], f: (_g, [x]) => op.log(x) },
  { name: 'Sqrt', inputs: [{ name: 'x', shape: [2, 8], init: positive }], f: (_g, [x]) => op.sqrt(x) },
  { name: 'Abs', inputs: [{ name: 'x', shape: [2, 8], init: awayFromZero }], f: (_g, [x]) => op.abs(x) },
  {
    name: 'Clip (run-time bounds)',
    inputs: [{ name: 'x', shape: [4, 8] }, { name: 'lo', shape: [], init: () => -0.5, grad: false }, { name: 'hi', shape: [], init: () => 0.55, grad: false }],
    f: (_g, [x, lo, hi]) => op.clip(x, lo, hi),
  },
  { name: 'ReduceSum (keepdims)', inputs: [{ name: 'x', shape: ['N', 3, 4] }], f: (_g, [x]) => op.reduceSum(x, [1], true) },
  { name: 'ReduceSum (batch axis)', inputs: [{ name: 'x', shape: ['N', 3, 4] }], f: (_g, [x]) => op.reduceSum(x, [0, 2]) },
  { name: 'ReduceMean', inputs: [{ name: 'x', shape: ['N', 3, 4] }], f: (_g, [x]) => op.reduceMean(x, [1, 2]) },
  { name: 'ReduceMean (batch axis, run-time count)', inputs: [{ name: 'x', shape: ['N', 3] }], f: (_g, [x]) => op.reduceMean(x, [0]) },
  { name: 'MatMul 2-D', inputs: [{ name: 'a', shape: [3, 4] }, { name: 'b', shape: [4, 5] }], f: (_g, [a, b]) => op.matmul(a, b) },
  { name: 'MatMul (batch broadcast)', inputs: [{ name: 'a', shape: ['N', 2, 3, 4] }, { name: 'b', shape: [4, 5] }], f: (_g, [a, b]) => op.matmul(a, b) },
  { name: 'MatMul (left constant-like 2-D)', inputs: [{ name: 'a', shape: [5, 3] }, { name: 'b', shape: ['N', 2, 3, 4] }], f: (_g, [a, b]) => op.matmul(a, b) },
  { name: 'Reshape', inputs: [{ name: 'x', shape: ['N', 3, 4] }], f: (_g, [x]) => op.mul(op.reshape(x, ['N', 12]), op.reshape(x, ['N', 12])) },
  { name: 'Transpose', inputs: [{ name: 'x', shape: [2, 3, 4] }], f: (_g, [x]) => op.mul(op.transpose(x, [2, 0, 1]), op.transpose(x, [2, 0, 1])) },
  { name: 'Squeeze/Unsqueeze', inputs: [{ name: 'x', shape: [2, 1, 4] }], f: (_g, [x]) => op.unsqueeze(op.mul(op.squeeze(x, [1]), op.squeeze(x, [1])), [0]) },
  { name: 'Concat', inputs: [{ name: 'a', shape: ['N', 2, 3] }, { name: 'b', shape: ['N', 3, 3] }], f: (_g, [a, b]) => op.mul(op.concat([a, b, a], 1), op.concat([b, a, a], 1)) },
  { name: 'Slice', inputs: [{ name: 'x', shape: ['N', 5, 6] }], f: (_g, [x]) => op.mul(op.slice(x, [1, 2], [4, -1], [1, 2]), 3) },
  { name: 'Pad', inputs: [{ name: 'x', shape: ['N', 2, 3] }], f: (_g, [x]) => op.mul(op.pad(x, [0, 1, 2], [0, 2, 0]), op.pad(x, [0, 1, 2], [0, 2, 0])) },
  { name: 'Expand', inputs: [{ name: 'x', shape: [3, 1] }], f: (_g, [x]) => op.expandTo(x, [2, 3, 4]) },
  {
    name: 'Conv (stride, padding, dilation, bias)',
    inputs: [{ name: 'x', shape: ['N', 3, 9, 8] }, { name: 'w', shape: [4, 3, 3, 3] }, { name: 'b', shape: [4] }],
    f: (_g, [x, w, b]) => op.conv(x, w, b, { strides: [2, 1], pads: [1, 0, 2, 1], dilations: [1, 2] }),
  },
  {
    name: 'Conv (3x3 same padding, stride 1: the shifted-product weight gradient)',
    inputs: [{ name: 'x', shape: ['N', 3, 6, 5] }, { name: 'w', shape: [4, 3, 3, 3] }, { name: 'b', shape: [4] }],
    f: (_g, [x, w, b]) => op.conv(x, w, b, { pads: [1, 1, 1, 1] }),
  },
  {
    name: 'Conv (stride 1, dilation, uneven padding)',
    inputs: [{ name: 'x', shape: ['N', 2, 8, 7] }, { name: 'w', shape: [3, 2, 3, 2] }],
    f: (_g, [x, w]) => op.conv(x, w, undefined, { pads: [2, 0, 1, 1], dilations: [2, 1] }),
  },
  {
    name: 'Conv (stride 1, 2x3 kernel dilated along the width, uneven padding)',
    inputs: [{ name: 'x', shape: ['N', 2, 5, 9] }, { name: 'w', shape: [3, 2, 2, 3] }],
    f: (_g, [x, w]) => op.conv(x, w, undefined, { pads: [0, 2, 1, 1], dilations: [1, 2] }),
  },
  {
    name: 'Conv (stride 1, 3x3 kernel, pad 3 on top: a pad beyond the kernel extent)',
    inputs: [{ name: 'x', shape: ['N', 2, 5, 6] }, { name: 'w', shape: [3, 2, 3, 3] }],
    f: (_g, [x, w]) => op.conv(x, w, undefined, { pads: [3, 0, 0, 0] }),
  },
  {
    name: 'Conv (1x1, pad 1: every pad beyond the kernel extent)',
    inputs: [{ name: 'x', shape: ['N', 2, 4, 5] }, { name: 'w', shape: [3, 2, 1, 1] }, { name: 'b', shape: [3] }],
    f: (_g, [x, w, b]) => op.conv(x, w, b, { pads: [1, 1, 1, 1] }),
  },
  {
    name: 'Conv (groups)',
    inputs: [{ name: 'x', shape: ['N', 4, 7, 7] }, { name: 'w', shape: [6, 2, 3, 3] }],
    f: (_g, [x, w]) => op.conv(x, w, undefined, { group: 2, pads: [1, 1, 1, 1] }),
  },
  {
    name: 'Conv (stride not dividing the input)',
    inputs: [{ name: 'x', shape: ['N', 2, 10, 10] }, { name: 'w', shape: [3, 2, 3, 3] }],
    f: (_g, [x, w]) => op.conv(x, w, undefined, { strides: [3, 3] }),
  },
  {
    name: 'ConvTranspose (stride, padding, bias)',
    inputs: [{ name: 'x', shape: ['N', 3, 5, 4] }, { name: 'w', shape: [3, 2, 3, 3] }, { name: 'b', shape: [2] }],
    f: (_g, [x, w, b]) => op.convTranspose(x, w, b, { strides: [2, 2], pads: [1, 1, 0, 1], outputPadding: [1, 0] }),
  },
  {
    name: 'ConvTranspose (groups, dilation)',
    inputs: [{ name: 'x', shape: ['N', 4, 4, 4] }, { name: 'w', shape: [4, 1, 2, 2] }],
    f: (_g, [x, w]) => op.convTranspose(x, w, undefined, { group: 2, dilations: [2, 1] }),
  },
  { name: 'AveragePool', inputs: [{ name: 'x', shape: ['N', 2, 4, 6] }], f: (_g, [x]) => op.mul(op.avgPool(x, 2), op.avgPool(x, 2)) },
  { name: 'Upsample (nearest)', inputs: [{ name: 'x', shape: ['N', 2, 3, 2] }], f: (_g, [x]) => op.mul(op.upsampleNearest(x, 2), op.upsampleNearest(x, 2)) },
];

for (const c of cases) {
  test(`gradient of ${c.name} matches finite differences`, async () => {
    const r = await gradCheck(c.inputs, c.f, { eps: c.eps });
    assert.ok(r.relError < (c.tol ?? 1e-2), `analytic ${r.analytic} vs numeric ${r.numeric} (relative error ${r.relError})`);
    assert.ok(Math.abs(r.analytic) > 1e-4, 'the check must exercise a non-zero gradient');
  });
}
