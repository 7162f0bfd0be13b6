// LoRA on an imported network: a fresh adapter changes nothing, the factors' gradients match finite
// differences, and the merged standalone ONNX computes what the adapted network computes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../../lib/graph/graph.ts';
import { serialize } from '../../lib/graph/onnx.ts';
import { GraphSession, type Feeds } from '../../lib/graph/runtime.ts';
import { gradCheck, testRandom, type CheckInput } from '../../lib/graph/gradcheck.ts';
import { initLora } from '../../lib/graph/lora.ts';
import { importOnnx } from '../../lib/import/onnx-import.ts';
import { adaptableWeights, mergedOnnx, withLora } from '../../lib/import/lora-network.ts';
import type { TensorMap } from '../../lib/checkpoint/tensors.ts';
import { torchStyleOnnx } from './models.ts';

const SHAPE = ['N', 3, 8, 8];
const bytes = torchStyleOnnx();
const net = importOnnx(bytes, { symbolicBatch: true, inputShapes: { input: SHAPE } });
const spec = { rank: 2, alpha: 4, targets: ['enc.conv.weight', 'mid.*', 'head.weight'] };

/** The adapted network with the base as frozen constants and the factors as inputs (the in-run policy). */
async function runAdapted(factors: TensorMap, image: Float32Array): Promise<Float32Array> {
  const lora = withLora(net, spec);
  const g = new Graph();
  const [y] = lora.build(g, { input: g.input('input', SHAPE) }, (p) => g.constant(net.weights.get(p.name)!.data, p.shape, 'float32', p.name), (name, shape) => g.input(name, shape));
  g.output('y', y);
  const s = await GraphSession.create(serialize(g));
  const feeds: Feeds = { input: { data: image, dims: [2, 3, 8, 8] } };
  for (const [n, t] of factors) feeds[n] = { data: t.data, dims: t.shape };
  const out = (await s.run(feeds)).y.data;
  await s.release();
  return out;
}

/** The imported base network, built the same way without adapters. */
async function runBase(image: Float32Array): Promise<Float32Array> {
  const g = new Graph();
  const [y] = net.build(g, { input: g.input('input', SHAPE) }, (p) => g.constant(net.weights.get(p.name)!.data, p.shape, 'float32', p.name));
  g.output('y', y);
  const s = await GraphSession.create(serialize(g));
  const out = (await s.run({ input: { data: image, dims: [2, 3, 8, 8] } })).y.data;
  await s.release();
  return out;
}

async function runOnnx(model: Uint8Array, image: Float32Array): Promise<Float32Array> {
  const s = await GraphSession.create(model);
  const out = (await s.run({ input: { data: image, dims: [2, 3, 8, 8] } })).output.data;
  await s.release();
  return out;
}

const rand = testRandom(4);
const image = Float32Array.from({ length: 2 * 3 * 64 }, () => rand());

test('the adaptable weights are the Conv/Gemm/MatMul weights; targets select by name pattern', () => {
  assert.deepEqual(adaptableWeights(net).map((w) => w.name), ['enc.conv.weight', 'mid.weight', 'head.weight']);
  const lora = withLora(net, spec);
  assert.deepEqual(lora.adapters.map((a) => [a.a.shape, a.b.shape]), [[[2, 27], [8, 2]], [[2, 72], [8, 2]], [[2, 16], [3, 2]]]);
  assert.throws(() => withLora(net, { ...spec, targets: ['decoder.*'] }), /lora: target 'decoder\.\*' matches none of the adaptable weights/);
  assert.throws(() => withLora(net, { ...spec, rank: 0 }), /lora: rank must be a positive integer, got 0/);
});

test('a fresh adapter (B = 0) leaves the output unchanged', async () => {
  const lora = withLora(net, spec);
  const adapted = await runAdapted(initLora(lora.adapters, 1), image);
  const base = await runBase(image);
  // Exact up to onnxruntime fusing BatchNorm into a constant Conv weight in the base graph only.
  const err = adapted.reduce((m, v, i) => Math.max(m, Math.abs(v - base[i])), 0);
  assert.ok(err < 1e-6, `max |adapted - base| = ${err}`);
});

test('the merged standalone ONNX equals the in-run adapted policy within 1e-5', async () => {
  const lora = withLora(net, spec);
  const factors = initLora(lora.adapters, 1);
  for (const ad of lora.adapters) factors.get(ad.b.name)!.data.forEach((_, i, a) => (a[i] = (rand() - 0.5) * 0.5)); // as after training
  const inRun = await runAdapted(factors, image);
  const merged = await runOnnx(mergedOnnx(bytes, net.weights, lora.adapters, factors), image);
  const base = await runOnnx(bytes, image);
  let scale = 0;
  let err = 0;
  let moved = 0;
  inRun.forEach((v, i) => {
    scale = Math.max(scale, Math.abs(v));
    err = Math.max(err, Math.abs(v - merged[i]));
    moved = Math.max(moved, Math.abs(v - base[i]));
  });
  assert.ok(moved > 1e-2, 'the adapters change the output');
  assert.ok(err / scale <= 1e-5, `merged vs in-run: relative ${err / scale}`);
});

test('gradients of the LoRA factors match finite differences', async () => {
  const lora = withLora(net, spec);
  const factors = initLora(lora.adapters, 2);
  for (const ad of lora.adapters) factors.get(ad.b.name)!.data.forEach((_, i, a) => (a[i] = (rand() - 0.5) * 0.5));
  const names = [...factors.keys()];
  const inputs: CheckInput[] = [
    { name: 'input', shape: SHAPE, dims: [2, 3, 8, 8], grad: false, init: (_i, r) => r() },
    ...names.map((n) => ({ name: n, shape: factors.get(n)!.shape, init: (i: number) => factors.get(n)!.data[i] })),
  ];
  const f = (g: Graph, xs: ReturnType<Graph['input']>[]) =>
    lora.build(g, { input: xs[0] }, (p) => g.constant(net.weights.get(p.name)!.data, p.shape, 'float32', p.name), (name) => xs[1 + names.indexOf(name)])[0];
  const tries = [await gradCheck(inputs, (g, xs) => f(g, xs), { eps: 1e-3, coordinates: 2 }), await gradCheck(inputs, (g, xs) => f(g, xs), { eps: 1e-4, coordinates: 2 })];
  const best = Math.min(...tries.map((r) => r.relError));
  assert.ok(best < 1e-2, JSON.stringify(tries));
  assert.ok(Math.abs(tries[0].analytic) > 1e-4);
});
