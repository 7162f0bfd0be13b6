// reward.encoder: which encoder a config selects, the pretrained one's conversion cache, its reward graph
// against TensorFlow.js end to end (preprocessing, network, cosine), and its gradients (direct reward backprop).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { Graph } from '../../lib/graph/graph.ts';
import { serialize } from '../../lib/graph/onnx.ts';
import { GraphSession } from '../../lib/graph/runtime.ts';
import { conv } from '../../lib/graph/ops.ts';
import { convertTfjsGraph, penultimateNode, type TfjsGraphModel, type TfNode } from '../../lib/encoders/tfjs-graph.ts';
import { loadNsfwjsModel } from '../../lib/encoders/nsfwjs.ts';
import { differentiableEncoder, encoderKindOf, loadEncoder } from '../../lib/models/reward.ts';
import { rewardModel } from '../../lib/models/bundle.ts';
import { buildRewardBackpropGraph } from '../../lib/models/graphs.ts';
import { BUILTIN_ENCODER_NAME, clipResizedSize } from '../../lib/models/encoder.ts';
import { SetupError } from '../../lib/config/setup-error.ts';
import { gradCheck, testRandom } from '../graph/gradcheck.ts';

process.env.RECOVERY_GRPO_CACHE_DIR = mkdtempSync(join(tmpdir(), 'encoder-cache-'));

test('reward.encoder and reward.clipModel select the encoder; inconsistent pairs are errors naming both', () => {
  assert.equal(encoderKindOf(undefined), 'random-features');
  assert.equal(encoderKindOf({}), 'random-features');
  assert.equal(encoderKindOf({ encoder: 'mobilenet-v2' }), 'mobilenet-v2');
  assert.equal(encoderKindOf({ clipModel: 'clip.onnx' }), 'onnx');
  assert.equal(encoderKindOf('clip.onnx'), 'onnx');
  // a SetupError: the reward worker exits CONFIG_EXIT_CODE (78) on it and is not restarted
  assert.throws(() => encoderKindOf({ encoder: 'onnx' }), (e: unknown) => e instanceof SetupError && /reward\.encoder: onnx needs reward\.clipModel/.test(e.message));
  assert.throws(() => encoderKindOf({ encoder: 'mobilenet-v2', clipModel: 'c.onnx' }), /mobilenet-v2 and reward\.clipModel \(c\.onnx\) conflict/);
  assert.throws(() => differentiableEncoder({ clipModel: '/x/my-clip.onnx' }), /my-clip\.onnx is spliced from ONNX and forward-only/);
  assert.equal(differentiableEncoder({}).name, BUILTIN_ENCODER_NAME);
});

test('the pretrained encoder is converted once and cached by the package digest; its name gives package, version and licence', async () => {
  const first = await loadEncoder({ encoder: 'mobilenet-v2' });
  assert.match(first.name, /^mobilenet-v2-1\.4-pooled \(nsfwjs@4\.4\.0 mobilenet_v2_mid, MIT\)$/);
  assert.deepEqual(first.source, { package: 'nsfwjs', version: '4.4.0', license: 'MIT', model: 'mobilenet_v2_mid' });
  const dir = join(process.env.RECOVERY_GRPO_CACHE_DIR!, 'encoders');
  const files = readdirSync(dir);
  assert.equal(files.length, 1);
  assert.ok(files[0].includes(loadNsfwjsModel().digest.slice(0, 16)));
  const mtime = statSync(join(dir, files[0])).mtimeMs;
  const second = await loadEncoder({ encoder: 'mobilenet-v2' });
  assert.ok(Buffer.from(second.bytes).equals(Buffer.from(first.bytes)), 'the cached model is the converted one');
  assert.equal(statSync(join(dir, files[0])).mtimeMs, mtime, 'the second load reads the cache');
});

test('the reward graph with the pretrained encoder gives the cosine of TensorFlow.js features (nsfwjs preprocessing) within 1e-4', async () => {
  await tf.setBackend('cpu');
  const files = loadNsfwjsModel();
  const [N, H, W] = [2, 40, 56];
  const rand = testRandom(5);
  const cand = Float32Array.from({ length: N * 3 * H * W }, () => rand());
  const ref = Float32Array.from({ length: N * 3 * H * W }, () => rand());
  const { bytes, encoder } = await rewardModel({ height: H, width: W }, { encoder: 'mobilenet-v2' });
  assert.equal(encoder.kind, 'mobilenet-v2');
  const session = await GraphSession.create(bytes);
  const out = await session.run({ candidate: { data: cand, dims: [N, 3, H, W] }, reference: { data: ref, dims: [N, 3, H, W] } });
  const same = await session.run({ candidate: { data: ref, dims: [N, 3, H, W] }, reference: { data: ref, dims: [N, 3, H, W] } });
  await session.release();
  same.clip_cos.data.forEach((c) => assert.ok(Math.abs(c - 1) < 1e-5, `an image against itself: cosine ${c}`));

  // TensorFlow.js: [0,1] pixels, resizeBilinear(alignCorners) to 224, the model up to its pooled features.
  const weightData = Buffer.concat(files.json.weightsManifest.flatMap((g) => g.paths).map((p) => files.shards.get(p)!));
  const model = await tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: files.json.modelTopology as unknown as tf.io.ModelArtifacts['modelTopology'],
    weightSpecs: files.json.weightsManifest.flatMap((g) => g.weights) as tf.io.WeightsManifestEntry[],
    weightData: weightData.buffer.slice(weightData.byteOffset, weightData.byteOffset + weightData.byteLength),
    format: 'graph-model',
  }));
  const features = (chw: Float32Array) => tf.tidy(() => {
    const nhwc = tf.tensor4d(chw, [N, 3, H, W]).transpose([0, 2, 3, 1]);
    const resized = tf.image.resizeBilinear(nhwc as tf.Tensor4D, [224, 224], true);
    return (model.execute({ input: resized }, penultimateNode(files.model, 'nsfwjs')) as tf.Tensor).arraySync() as number[][];
  });
  const a = features(cand);
  const b = features(ref);
  for (let i = 0; i < N; i++) {
    let dot = 0, na = 0, nb = 0;
    for (let j = 0; j < a[i].length; j++) {
      dot += a[i][j] * b[i][j];
      na += a[i][j] ** 2;
      nb += b[i][j] ** 2;
    }
    const cos = dot / Math.sqrt(na * nb);
    assert.ok(Math.abs(out.clip_cos.data[i] - cos) < 1e-4, `pair ${i}: reward graph ${out.clip_cos.data[i]} vs TensorFlow.js ${cos}`);
  }
});

/** A small hand-written TensorFlow graph with the ops whose gradients the pretrained network needs. */
function tinyTfModel(): TfjsGraphModel {
  const rand = testRandom(11);
  const t = (shape: number[]) => ({ shape, data: Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, () => rand() - 0.5) });
  const ints = (xs: number[]) => ({ list: { i: xs.map(String) } });
  const s = (x: string) => ({ s: Buffer.from(x).toString('base64') });
  const ops = (xs: string[]) => ({ list: { s: xs.map((x) => Buffer.from(x).toString('base64')) } });
  const nodes: TfNode[] = [
    { name: 'input', op: 'Placeholder' },
    { name: 'dw', op: 'FusedDepthwiseConv2dNative', input: ['input', 'dw_w', 'dw_b'], attr: { strides: ints([1, 2, 2, 1]), padding: s('SAME'), fused_ops: ops(['BiasAdd', 'Relu6']) } },
    { name: 'pw', op: '_FusedConv2D', input: ['dw', 'pw_w', 'pw_b'], attr: { strides: ints([1, 1, 1, 1]), padding: s('SAME'), fused_ops: ops(['BiasAdd']) } },
    { name: 'pw2', op: '_FusedConv2D', input: ['pw', 'pw2_w', 'pw2_b'], attr: { strides: ints([1, 1, 1, 1]), padding: s('SAME'), fused_ops: ops(['BiasAdd', 'Relu6']) } },
    { name: 'sum', op: 'AddV2', input: ['pw', 'pw2'] },
    { name: 'pool', op: 'AvgPool', input: ['sum'], attr: { ksize: ints([1, 4, 4, 1]), strides: ints([1, 1, 1, 1]), padding: s('VALID') } },
    { name: 'feat', op: 'Squeeze', input: ['pool'], attr: { squeeze_dims: ints([1, 2]) } },
  ];
  for (const n of ['dw_w', 'dw_b', 'pw_w', 'pw_b', 'pw2_w', 'pw2_b']) nodes.push({ name: n, op: 'Const' });
  const weights = new Map([
    ['dw_w', t([3, 3, 3, 2])], ['dw_b', t([6])], ['pw_w', t([1, 1, 6, 5])], ['pw_b', t([5])], ['pw2_w', t([3, 3, 5, 5])], ['pw2_b', t([5])],
  ]);
  return { nodes, weights };
}

test('gradients through converted ops (depthwise stride 2 with SAME padding, Relu6, residual add, pooling) match finite differences', async () => {
  const model = tinyTfModel();
  const r = await gradCheck([{ name: 'x', shape: [2, 3, 8, 8], init: (_i, rr) => 12 * rr() - 4 }], (_g, [x]) => convertTfjsGraph(model, x, ['feat'], 'tiny').get('feat')!, { eps: 1e-4 });
  assert.ok(r.relError < 1e-2, `analytic ${r.analytic} vs numeric ${r.numeric} (relative error ${r.relError})`);
  assert.ok(Math.abs(r.analytic) > 1e-4);
  // The depthwise convolution alone, stride 2 with TensorFlow's SAME padding (bottom/right only).
  const dw = await gradCheck([{ name: 'x', shape: [1, 4, 8, 8] }], (g, [x]) => conv(x, g.constant(Float32Array.from({ length: 4 * 9 }, (_, i) => Math.sin(i)), [4, 1, 3, 3]), undefined, { strides: [2, 2], pads: [0, 0, 1, 1], group: 4 }));
  assert.ok(dw.relError < 1e-2, `depthwise: analytic ${dw.analytic} vs numeric ${dw.numeric}`);
});

test('direct reward backprop with the pretrained encoder: its gradient matches a finite difference along itself', async () => {
  const { policyParams } = await import('../../lib/models/policy.ts');
  const spec = { arch: 'resnet' as const, width: 4, depth: 1, logStd: Math.log(0.05), learnLogStd: false };
  const R = { height: 32, width: 32 };
  const enc = differentiableEncoder({ encoder: 'mobilenet-v2' });
  const g: Graph = buildRewardBackpropGraph(spec, R, enc.name, enc.encode, enc.preprocess);
  const session = await GraphSession.create(serialize(g));
  const rand = testRandom(3);
  const N = 2;
  const pix = N * 3 * 32 * 32;
  const feeds: Record<string, { data: Float32Array; dims: number[] }> = {
    image: { data: Float32Array.from({ length: pix }, () => 0.2 + 0.6 * rand()), dims: [N, 3, 32, 32] },
    reference: { data: Float32Array.from({ length: pix }, () => rand()), dims: [N, 3, 32, 32] },
    d_ssim: { data: Float32Array.of(0, 0), dims: [N] },
    d_clip_cos: { data: Float32Array.of(1, 1), dims: [N] },
  };
  const params = policyParams(spec).filter((p) => p.name !== 'log_std');
  for (const p of policyParams(spec)) feeds[`param.${p.name}`] = { data: Float32Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, () => (rand() - 0.5) * 0.4), dims: p.shape };
  const out = await session.run(feeds);
  const grads = params.map((p) => out[`grad.${p.name}`].data);
  const norm = Math.sqrt(grads.reduce((a, d) => a + d.reduce((s, v) => s + v * v, 0), 0));
  assert.ok(Number.isFinite(norm) && norm > 1e-4, `gradient norm ${norm}`);
  const lossAt = async (t: number) => {
    const shifted = { ...feeds };
    params.forEach((p, i) => (shifted[`param.${p.name}`] = { data: feeds[`param.${p.name}`].data.map((v, j) => v + (t * grads[i][j]) / norm), dims: p.shape }));
    return (await session.run(shifted, ['loss'])).loss.data[0];
  };
  const eps = 1e-2;
  const numeric = ((await lossAt(eps)) - (await lossAt(-eps))) / (2 * eps);
  await session.release();
  assert.ok(Math.abs(numeric - norm) < 0.05 * norm, `directional derivative: analytic ${norm} vs numeric ${numeric}`);
});

test('a reward scorer with reward.encoder mobilenet-v2 reports the encoder with package, version and licence', async () => {
  const { RewardScorer } = await import('../../lib/models/scorer.ts');
  const scorer = new RewardScorer({ encoder: 'mobilenet-v2' });
  const img = Float32Array.from({ length: 3 * 16 * 16 }, (_, i) => (i % 7) / 7);
  const s = await scorer.score({ candidates: img, references: img, n: 1, height: 16, width: 16 });
  await scorer.close();
  assert.ok(Math.abs(s.clip_cos[0] - 1) < 1e-5);
  assert.equal(scorer.encoderName, 'mobilenet-v2-1.4-pooled (nsfwjs@4.4.0 mobilenet_v2_mid, MIT)');
});

test('a reward.clipModel that cannot be read or is not a model is a SetupError naming it (a role ends with exit 78, not restarted)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'clip-model-'));
  const notModel = join(dir, 'not-a-model.onnx');
  writeFileSync(notModel, 'not protobuf at all \xff\xff');
  await assert.rejects(loadEncoder(join(dir, 'missing.onnx')), (e: unknown) => e instanceof SetupError && /^reward\.clipModel: cannot read .*missing\.onnx/.test(e.message));
  await assert.rejects(loadEncoder(notModel), (e: unknown) => e instanceof SetupError && /^reward\.clipModel: .*not-a-model\.onnx/.test(e.message));
});

test("clipResizedSize: the longer side is int(224 * long / short), as torchvision's Resize(224) and HF's CLIPImageProcessor", () => {
  // hand-computed with Python's int(224 * long / short); rounding gave 299 and 298 for the first two (review23a)
  assert.deepEqual(clipResizedSize(48, 64), [224, 298]);
  assert.deepEqual(clipResizedSize(128, 170), [224, 297]);
  assert.deepEqual(clipResizedSize(170, 128), [297, 224]);
  assert.deepEqual(clipResizedSize(48, 96), [224, 448]); // an exact quotient stays exact
  assert.deepEqual(clipResizedSize(300, 500), [224, 373]);
  assert.deepEqual(clipResizedSize(64, 64), [224, 224]);
});
