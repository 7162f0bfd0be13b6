// The gradients of the ops imported networks need (lib/graph/nn-ops.ts), against central finite
// differences through onnxruntime, with the same checker as the project's own ops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as nn from '../../lib/graph/nn-ops.ts';
import { mul } from '../../lib/graph/ops.ts';
import { gradCheck, type CheckInput } from './gradcheck.ts';
import type { Graph, Value } from '../../lib/graph/graph.ts';

const awayFromZero = (_i: number, r: () => number) => (r() < 0.5 ? -1 : 1) * (0.2 + r());
const positive = (_i: number, r: () => number) => 0.5 + r();
/** Distinct values (a shuffled ramp) so that pooling windows have no ties. */
const distinct = (i: number) => (((i * 7919) % 257) / 257) * 2 - 1;

interface Case {
  name: string;
  inputs: CheckInput[];
  f: (g: Graph, xs: Value[]) => Value;
  tol?: number;
}

const sq = (y: Value): Value => mul(y, y);

const cases: Case[] = [
  { name: 'Erf', inputs: [{ name: 'x', shape: [2, 8] }], f: (_g, [x]) => nn.erf(x) },
  { name: 'Softplus', inputs: [{ name: 'x', shape: [2, 8] }], f: (_g, [x]) => nn.softplus(x) },
  { name: 'Elu', inputs: [{ name: 'x', shape: [2, 8], init: awayFromZero }], f: (_g, [x]) => nn.elu(x, 0.7) },
  { name: 'Selu', inputs: [{ name: 'x', shape: [2, 8], init: awayFromZero }], f: (_g, [x]) => nn.selu(x) },
  { name: 'Softsign', inputs: [{ name: 'x', shape: [2, 8], init: awayFromZero }], f: (_g, [x]) => nn.softsign(x) },
  {
    name: 'PRelu (per-channel slope)',
    inputs: [{ name: 'x', shape: ['N', 3, 2, 2], init: awayFromZero }, { name: 's', shape: [3, 1, 1] }],
    f: (_g, [x, s]) => nn.prelu(x, s),
  },
  { name: 'Softmax', inputs: [{ name: 'x', shape: ['N', 4, 3] }], f: (_g, [x]) => nn.softmax(x, 1) },
  { name: 'LogSoftmax', inputs: [{ name: 'x', shape: ['N', 3, 5] }], f: (_g, [x]) => nn.logSoftmax(x, -1) },
  {
    name: 'BatchNormalization (inference)',
    inputs: [
      { name: 'x', shape: ['N', 3, 4, 4] }, { name: 'scale', shape: [3] }, { name: 'bias', shape: [3] },
      { name: 'mean', shape: [3], grad: false }, { name: 'var', shape: [3], init: positive, grad: false },
    ],
    f: (_g, [x, s, b, m, v]) => nn.batchNorm(x, s, b, m, v, 1e-5),
  },
  {
    name: 'InstanceNormalization',
    inputs: [{ name: 'x', shape: ['N', 3, 4, 5] }, { name: 'scale', shape: [3] }, { name: 'bias', shape: [3] }],
    f: (_g, [x, s, b]) => nn.instanceNorm(x, s, b),
  },
  {
    name: 'LayerNormalization (last two axes)',
    inputs: [{ name: 'x', shape: ['N', 3, 4] }, { name: 'scale', shape: [3, 4] }, { name: 'bias', shape: [3, 4] }],
    f: (_g, [x, s, b]) => nn.layerNorm(x, s, b, 1),
  },
  {
    name: 'Gemm (transB, alpha, beta)',
    inputs: [{ name: 'a', shape: [3, 4] }, { name: 'b', shape: [5, 4] }, { name: 'c', shape: [5] }],
    f: (_g, [a, b, c]) => nn.gemm(a, b, c, { transB: true, alpha: 0.5, beta: 2 }),
  },
  { name: 'Flatten', inputs: [{ name: 'x', shape: ['N', 2, 3] }], f: (_g, [x]) => sq(nn.flatten(x, 1)) },
  { name: 'Split', inputs: [{ name: 'x', shape: ['N', 5, 2] }], f: (_g, [x]) => { const [a, b] = nn.split(x, [2, 3], 1); return mul(a, nn.split(b, [2, 1], 1)[0]); } },
  { name: 'Tile', inputs: [{ name: 'x', shape: [2, 3] }], f: (_g, [x]) => sq(nn.tile(x, [2, 3])) },
  { name: 'DepthToSpace (DCR)', inputs: [{ name: 'x', shape: ['N', 8, 2, 3] }], f: (_g, [x]) => sq(nn.depthToSpace(x, 2, 'DCR')) },
  { name: 'DepthToSpace (CRD, PixelShuffle)', inputs: [{ name: 'x', shape: ['N', 8, 2, 3] }], f: (_g, [x]) => sq(nn.depthToSpace(x, 2, 'CRD')) },
  { name: 'SpaceToDepth', inputs: [{ name: 'x', shape: ['N', 2, 4, 6] }], f: (_g, [x]) => sq(nn.spaceToDepth(x, 2)) },
  { name: 'Pad (reflect)', inputs: [{ name: 'x', shape: ['N', 2, 4, 5] }], f: (_g, [x]) => sq(nn.padMode(x, [0, 0, 2, 1], [0, 0, 1, 3], 'reflect')) },
  { name: 'Pad (edge)', inputs: [{ name: 'x', shape: ['N', 2, 3, 3] }], f: (_g, [x]) => sq(nn.padMode(x, [0, 0, 2, 1], [0, 0, 1, 2], 'edge')) },
  {
    name: 'AveragePool (overlapping, padded, count_include_pad)',
    inputs: [{ name: 'x', shape: ['N', 2, 5, 6] }],
    f: (_g, [x]) => sq(nn.averagePool(x, { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] })),
  },
  {
    name: 'AveragePool (padded, excluding the padding)',
    inputs: [{ name: 'x', shape: ['N', 2, 5, 6] }],
    f: (_g, [x]) => sq(nn.averagePool(x, { kernel: [3, 2], strides: [1, 2], pads: [1, 0, 1, 1], countIncludePad: false })),
  },
  {
    name: 'MaxPool (2x2 stride 2)',
    inputs: [{ name: 'x', shape: ['N', 3, 4, 6], init: distinct }],
    f: (_g, [x]) => nn.maxPool(x, { kernel: [2, 2], strides: [2, 2] }),
  },
  {
    name: 'MaxPool (3x3, stride, padding, dilation, overlapping windows)',
    inputs: [{ name: 'x', shape: ['N', 2, 7, 8], init: distinct }],
    f: (_g, [x]) => nn.maxPool(x, { kernel: [3, 2], strides: [2, 1], pads: [1, 1, 1, 0], dilations: [1, 2] }),
  },
  { name: 'GlobalAveragePool', inputs: [{ name: 'x', shape: ['N', 3, 4, 5] }], f: (_g, [x]) => sq(nn.globalAveragePool(x)) },
  { name: 'Resize (nearest x2)', inputs: [{ name: 'x', shape: ['N', 2, 3, 2] }], f: (_g, [x]) => sq(nn.resizeNearest(x, 2, 3)) },
  { name: 'Resize (nearest, one-hot, half_pixel x5/3 x7/4)', inputs: [{ name: 'x', shape: ['N', 2, 3, 4] }], f: (_g, [x]) => sq(nn.resizeNearestTo(x, 5, 7, 'half_pixel', 'round_prefer_floor')) },
  { name: 'Resize (bilinear, half_pixel)', inputs: [{ name: 'x', shape: ['N', 2, 3, 4] }], f: (_g, [x]) => sq(nn.resizeBilinear(x, 6, 7, 'half_pixel')) },
  { name: 'Resize (bilinear, align_corners)', inputs: [{ name: 'x', shape: ['N', 2, 3, 4] }], f: (_g, [x]) => sq(nn.resizeBilinear(x, 5, 8, 'align_corners')) },
];

for (const c of cases) {
  test(`gradient of ${c.name} matches finite differences`, async () => {
    const r = await gradCheck(c.inputs, c.f);
    assert.ok(r.relError < (c.tol ?? 1e-2), `analytic ${r.analytic} vs numeric ${r.numeric} (relative error ${r.relError})`);
    assert.ok(Math.abs(r.analytic) > 1e-4, 'the check must exercise a non-zero gradient');
  });
}
