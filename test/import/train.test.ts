// An imported network trains with the project's autodiff: a residual regression (the SFT loss's form,
// mean((image + f(image) - target)^2)), full fine-tuning and LoRA-only, plain gradient descent in JS on
// gradients from the training graph run in onnxruntime.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, type Value } from '../../lib/graph/graph.ts';
import { add, mul, reduceMean, sub } from '../../lib/graph/ops.ts';
import { gradients } from '../../lib/graph/autodiff.ts';
import { serialize } from '../../lib/graph/onnx.ts';
import { GraphSession, type Feeds } from '../../lib/graph/runtime.ts';
import { testRandom } from '../../lib/graph/gradcheck.ts';
import { initLora } from '../../lib/graph/lora.ts';
import { importOnnx, type ImportedParam } from '../../lib/import/onnx-import.ts';
import { withLora } from '../../lib/import/lora-network.ts';
import type { TensorMap } from '../../lib/checkpoint/tensors.ts';
import { torchStyleOnnx } from './models.ts';

const SHAPE = ['N', 3, 8, 8];
const net = importOnnx(torchStyleOnnx(), { symbolicBatch: true, inputShapes: { input: SHAPE } });
const rand = testRandom(21);
const image = Float32Array.from({ length: 4 * 3 * 64 }, () => rand());
const target = image.map((v, i) => 0.7 * v + 0.15 + 0.05 * Math.sin(i)); // a contrast change to learn

/** Builds loss and gradients for the trainable tensors; the rest of the base is frozen as constants. */
function trainingGraph(trainable: (p: ImportedParam) => boolean, lora?: ReturnType<typeof withLora>): { bytes: Uint8Array; names: string[]; shapes: number[][] } {
  const g = new Graph();
  const x = g.input('input', SHAPE);
  const y = g.input('target', SHAPE);
  const wrt: Value[] = [];
  const param = (p: ImportedParam): Value => {
    if (!trainable(p)) return g.constant(net.weights.get(p.name)!.data, p.shape, 'float32', p.name);
    const v = g.input(`param.${p.name}`, p.shape);
    wrt.push(v);
    return v;
  };
  const factor = (name: string, shape: number[]): Value => {
    const v = g.input(`param.${name}`, shape);
    wrt.push(v);
    return v;
  };
  const [residual] = lora ? lora.build(g, { input: x }, param, factor) : net.build(g, { input: x }, param);
  const err = sub(add(x, residual), y);
  const loss = reduceMean(mul(err, err));
  g.output('loss', loss);
  gradients(loss, wrt).forEach((d, i) => g.output(`grad.${wrt[i].name}`, d));
  return { bytes: serialize(g), names: wrt.map((v) => v.name), shapes: wrt.map((v) => v.shape as number[]) };
}

async function descend(graph: ReturnType<typeof trainingGraph>, start: TensorMap, steps: number, lr: number): Promise<number[]> {
  const s = await GraphSession.create(graph.bytes);
  const values = new Map(graph.names.map((n) => [n, Float32Array.from(start.get(n.slice('param.'.length))!.data)]));
  const losses: number[] = [];
  for (let k = 0; k < steps; k++) {
    const feeds: Feeds = { input: { data: image, dims: [4, 3, 8, 8] }, target: { data: target, dims: [4, 3, 8, 8] } };
    graph.names.forEach((n, i) => (feeds[n] = { data: values.get(n)!, dims: graph.shapes[i] }));
    const out = await s.run(feeds);
    losses.push(out.loss.data[0]);
    for (const n of graph.names) {
      const w = values.get(n)!;
      const d = out[`grad.${n}`].data;
      for (let i = 0; i < w.length; i++) w[i] -= lr * d[i];
    }
  }
  await s.release();
  return losses;
}

test('full fine-tuning of an imported network lowers the loss (running statistics frozen)', async () => {
  const graph = trainingGraph((p) => p.role !== 'running-stat');
  assert.ok(!graph.names.some((n) => n.includes('running')));
  const losses = await descend(graph, net.weights, 40, 0.05);
  assert.ok(losses[losses.length - 1] < 0.5 * losses[0], `loss ${losses[0]} -> ${losses[losses.length - 1]}`);
});

test('LoRA-only training (base frozen) lowers the loss', async () => {
  const lora = withLora(net, { rank: 2, alpha: 4, targets: ['*'] });
  const graph = trainingGraph(() => false, lora);
  assert.deepEqual(graph.names, lora.adapters.flatMap((a) => [`param.${a.a.name}`, `param.${a.b.name}`]).sort((p, q) => graph.names.indexOf(p) - graph.names.indexOf(q)));
  const losses = await descend(graph, initLora(lora.adapters, 3), 40, 0.05);
  assert.ok(losses[losses.length - 1] < 0.7 * losses[0], `loss ${losses[0]} -> ${losses[losses.length - 1]}`);
});
