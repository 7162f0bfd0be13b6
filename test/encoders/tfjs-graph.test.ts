// The TensorFlow.js graph-model converter, op by op against TensorFlow.js itself (its pure-JavaScript CPU
// backend) running the same nsfwjs model on the same inputs: every computing node's output agrees within
// 1e-4 of the reference's largest magnitude.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Graph, type Value } from '../../lib/graph/graph.ts';
import { serialize } from '../../lib/graph/onnx.ts';
import { GraphSession } from '../../lib/graph/runtime.ts';
import { computeNodes, convertTfjsGraph, penultimateNode, readTfjsGraphModel, asModelJson } from '../../lib/encoders/tfjs-graph.ts';
import { bilinearAlignCornersMatrix, loadNsfwjsModel } from '../../lib/encoders/nsfwjs.ts';
import { testRandom } from '../graph/gradcheck.ts';

const N = 2;
const S = 224;

/** NHWC reference data -> NCHW order, for 4-D tensors; others unchanged. */
function toNchw(data: Float32Array, shape: number[]): Float32Array {
  if (shape.length !== 4) return data;
  const [n, h, w, c] = shape;
  const out = new Float32Array(data.length);
  for (let b = 0; b < n; b++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) {
    out[((b * c + k) * h + y) * w + x] = data[((b * h + y) * w + x) * c + k];
  }
  return out;
}

test('every op of nsfwjs MobileNetV2 agrees with TensorFlow.js within 1e-4 relative', async () => {
  await tf.setBackend('cpu');
  const files = loadNsfwjsModel();
  const weightSpecs = files.json.weightsManifest.flatMap((g) => g.weights);
  const paths = files.json.weightsManifest.flatMap((g) => g.paths);
  const total = paths.reduce((a, p) => a + files.shards.get(p)!.length, 0);
  const weightData = new Uint8Array(total);
  let o = 0;
  for (const p of paths) {
    weightData.set(files.shards.get(p)!, o);
    o += files.shards.get(p)!.length;
  }
  const reference = await tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: files.json.modelTopology as unknown as tf.io.ModelArtifacts['modelTopology'],
    weightSpecs: weightSpecs as tf.io.WeightsManifestEntry[],
    weightData: weightData.buffer,
    format: 'graph-model',
  }));

  const rand = testRandom(18);
  const nchw = Float32Array.from({ length: N * 3 * S * S }, () => rand());
  const nhwc = new Float32Array(nchw.length);
  for (let b = 0; b < N; b++) for (let c = 0; c < 3; c++) for (let i = 0; i < S * S; i++) nhwc[(b * S * S + i) * 3 + c] = nchw[(b * 3 + c) * S * S + i];

  const names = computeNodes(files.model);
  const ops = new Map(files.model.nodes.map((n) => [n.name, n.op]));
  assert.ok(names.length > 60, `only ${names.length} computing nodes`);
  const g = new Graph();
  const converted = convertTfjsGraph(files.model, g.input('x', [N, 3, S, S]), names, 'nsfwjs');
  const outName = new Map<Value, string>();
  for (const name of names) {
    const v = converted.get(name)!;
    if (!outName.has(v)) {
      outName.set(v, `o${outName.size}`);
      g.output(`o${outName.size - 1}`, v);
    }
  }
  const session = await GraphSession.create(serialize(g));
  const ours = await session.run({ x: { data: nchw, dims: [N, 3, S, S] } });
  await session.release();

  const input = tf.tensor4d(nhwc, [N, S, S, 3]);
  const refs = reference.execute({ input }, names) as tf.Tensor[];
  const worstByOp = new Map<string, number>();
  names.forEach((name, i) => {
    const ref = toNchw(refs[i].dataSync() as Float32Array, refs[i].shape);
    const got = ours[outName.get(converted.get(name)!)!].data;
    assert.equal(got.length, ref.length, `${name}: ${got.length} values, TensorFlow.js has ${ref.length}`);
    let diff = 0;
    let scale = 0;
    for (let j = 0; j < ref.length; j++) {
      diff = Math.max(diff, Math.abs(got[j] - ref[j]));
      scale = Math.max(scale, Math.abs(ref[j]));
    }
    const rel = diff / Math.max(scale, 1e-6);
    const op = ops.get(name)!;
    worstByOp.set(op, Math.max(worstByOp.get(op) ?? 0, rel));
    assert.ok(rel <= 1e-4, `${name} (${op}): max |ours - tfjs| = ${diff} against max |tfjs| = ${scale} (relative ${rel})`);
  });
  tf.dispose([input, ...refs]);
  // Every op type of the model was compared (the table goes in docs/encoders.md).
  console.log(JSON.stringify(Object.fromEntries(worstByOp)));
  assert.ok(['_FusedConv2D', 'FusedDepthwiseConv2dNative', 'AddV2', 'AvgPool', 'Squeeze', '_FusedMatMul', 'Softmax'].every((op) => worstByOp.has(op)));
  assert.ok(converted.has(penultimateNode(files.model, 'nsfwjs')));
});

test('the bilinear resize matches tf.image.resizeBilinear with corners aligned', async () => {
  await tf.setBackend('cpu');
  const [h, w] = [37, 64];
  const rand = testRandom(19);
  const img = Float32Array.from({ length: h * w }, () => rand());
  const ref = tf.image.resizeBilinear(tf.tensor4d(img, [1, h, w, 1]), [S, S], true).dataSync();
  const rows = bilinearAlignCornersMatrix(h, S);
  const cols = bilinearAlignCornersMatrix(w, S);
  let worst = 0;
  for (let i = 0; i < S; i++) for (let j = 0; j < S; j++) {
    let v = 0;
    for (let y = 0; y < h; y++) {
      if (!rows[i * h + y]) continue;
      for (let x = 0; x < w; x++) v += rows[i * h + y] * img[y * w + x] * cols[j * w + x];
    }
    worst = Math.max(worst, Math.abs(v - ref[i * S + j]));
  }
  assert.ok(worst < 1e-5, `max difference ${worst}`);
});

test('bad model files give errors naming what is wrong', () => {
  assert.throws(() => asModelJson({ modelTopology: { model_config: {} }, weightsManifest: [] }, 'layers.json'), /layers\.json: not a TensorFlow\.js graph model/);
  const json = asModelJson({ modelTopology: { node: [] }, weightsManifest: [{ paths: ['s1'], weights: [{ name: 'w', shape: [4], dtype: 'float32', quantization: { dtype: 'uint8', min: -1, scale: 0.5 } }] }] }, 'm');
  assert.throws(() => readTfjsGraphModel(json, new Map(), 'm'), /m: weight shard s1 is missing/);
  assert.throws(() => readTfjsGraphModel(json, new Map([['s1', new Uint8Array(3)]]), 'm'), /the shards end inside weight w/);
  const w = readTfjsGraphModel(json, new Map([['s1', Uint8Array.from([0, 1, 2, 255])]]), 'm').weights.get('w')!;
  assert.deepEqual(Array.from(w.data), [-1, -0.5, 0, 126.5]);
  const g = new Graph();
  const model = { nodes: [{ name: 'input', op: 'Placeholder' }, { name: 'bad', op: 'Erf', input: ['input'] }], weights: new Map() };
  assert.throws(() => convertTfjsGraph(model, g.input('x', [1, 3, 4, 4]), ['bad'], 'm'), /m: tfjs node bad \(Erf\): op not supported/);
});
