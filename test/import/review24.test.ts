// Whole small graphs that once imported wrongly (review 24): each against onnxruntime running the file
// itself, or refused with the file and the node named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Graph } from '../../lib/graph/graph.ts';
import { decodeTensor, serialize } from '../../lib/graph/onnx.ts';
import { expandTo } from '../../lib/graph/ops.ts';
import { GraphSession, type Feeds } from '../../lib/graph/runtime.ts';
import { gradCheck, testRandom } from '../../lib/graph/gradcheck.ts';
import { importOnnx, type ImportOptions } from '../../lib/import/onnx-import.ts';
import { importedPolicy, isNetworkChecked } from '../../lib/models/imported-policy.ts';
import { checkNetworkOf, paramShapesOf, policySpecOf } from '../../lib/models/bundle.ts';
import { baseDigestOf } from '../../lib/models/policy.ts';
import { openRunDataset } from '../../lib/config/dataset.ts';
import { runSingleProcess } from '../../lib/local/single-process.ts';
import { sha256Hex } from '../../lib/checkpoint/digest.ts';
import { loadConfig } from '../../lib/config/index.ts';
import { CONFIG_EXIT_CODE, exitCodeFor, SetupError } from '../../lib/config/setup-error.ts';
import { importReport } from '../../lib/import/report.ts';
import { int, modelTensor, onnxModel, str, type ModelTensor } from './models.ts';

const rand = testRandom(24);
const randoms = (n: number) => Array.from({ length: n }, () => rand() * 2 - 1);
const f = (name: string, dims: number[]): ModelTensor => ({ name, dims, values: randoms(dims.reduce((a, b) => a * b, 1)) });
/** A Constant node (what torch.onnx.export writes for a traced float). */
const constant = (out: string, dims: number[], values: number[]) => ({ op: 'Constant', inputs: [], outputs: [out], attrs: [{ name: 'value', type: 4, t: modelTensor({ name: out, dims, values }) }] });
const i64 = (name: string, values: number[], dims = [values.length]): ModelTensor => ({ name, dims, values, dtype: 'int64' });

/** Max |imported - onnxruntime(file)| of the first output, for random inputs of the given sizes. */
async function maxError(bytes: Uint8Array, dims: Record<string, number[]>, opts: ImportOptions = {}): Promise<number> {
  const net = importOnnx(bytes, { source: 'case.onnx', ...opts });
  const g = new Graph();
  const ins = Object.fromEntries(net.inputs.map((io) => [io.name, g.input(io.name, io.shape)]));
  const [y] = net.build(g, ins, (p) => g.input(`param.${p.name}`, p.shape));
  g.output('y', y);
  const feeds: Feeds = Object.fromEntries(Object.entries(dims).map(([k, d]) => [k, { dims: d, data: Float32Array.from(randoms(d.reduce((a, b) => a * b, 1))) }]));
  const params: Feeds = Object.fromEntries([...net.weights].map(([n, t]) => [`param.${n}`, { data: t.data, dims: t.shape }]));
  const ours = await GraphSession.create(serialize(g));
  const ref = await GraphSession.create(bytes);
  try {
    const got = (await ours.run({ ...feeds, ...params })).y;
    const want = Object.values(await ref.run(feeds))[0];
    assert.deepEqual(got.dims, want.dims, 'output shape');
    return want.data.reduce((m, v, j) => Math.max(m, Math.abs(v - got.data[j])), 0);
  } finally {
    await ours.release();
    await ref.release();
  }
}

test('Expand to a shape holding the run-time batch expands the batch (pos_embed.expand(B, ...))', async () => {
  // e = pos_embed.expand(shape(conv(image))); y = conv(image) + e.sum(0): B * pos_embed, so the batch counts.
  const bytes = onnxModel({
    opset: 13,
    inputs: [{ name: 'image', dims: ['batch', 3, 4, 4] }],
    nodes: [
      { op: 'Conv', inputs: ['image', 'conv.weight'], outputs: ['c'], attrs: [{ name: 'pads', type: 7, ints: [1, 1, 1, 1] }] },
      { op: 'Shape', inputs: ['c'], outputs: ['s'] },
      { op: 'Expand', inputs: ['pos_embed', 's'], outputs: ['e'] },
      { op: 'ReduceSum', inputs: ['e', 'ax0'], outputs: ['m'], attrs: [int('keepdims', 1)] },
      { op: 'Add', inputs: ['c', 'm'], outputs: ['y'] },
    ],
    inits: [f('conv.weight', [3, 3, 3, 3]), f('pos_embed', [1, 3, 4, 4]), i64('ax0', [0])],
    outputs: ['y'],
  });
  for (const batch of [1, 3]) {
    const err = await maxError(bytes, { image: [batch, 3, 4, 4] }, { symbolicBatch: true });
    assert.ok(err < 1e-5, `batch ${batch}: max error ${err}`);
  }
});

test('expandTo reads a run-time dimension only from a tensor that holds it', () => {
  const g = new Graph();
  const x = g.input('x', [1, 3]);
  const other = g.input('other', ['M', 3]);
  assert.throws(() => expandTo(x, ['N', 3], other), /nothing holds the run-time dimension 'N'/);
  assert.deepEqual(expandTo(x, ['M', 3], other).shape, ['M', 3]);
});

const bnModel = (opset: number, outputs: number, attrs = [] as ReturnType<typeof int>[]) => onnxModel({
  opset,
  inputs: [{ name: 'x', dims: [2, 3, 5, 6] }],
  nodes: [{ op: 'BatchNormalization', name: '/bn/BatchNormalization', inputs: ['x', 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var'], outputs: ['y', 'rm', 'rv', 'sm', 'sv'].slice(0, outputs), attrs }],
  inits: [f('bn.weight', [3]), f('bn.bias', [3]), { name: 'bn.running_mean', dims: [3], values: [0.5, -0.5, 0.2] }, { name: 'bn.running_var', dims: [3], values: [4, 2, 3] }],
  outputs: ['y'],
});

test('BatchNormalization in training form is refused in every opset spelling, naming the node', async () => {
  // opsets 7-13: a node with the running-statistics outputs is the training form (PyTorch's train-mode export)
  for (const opset of [7, 9, 13]) {
    assert.throws(() => importOnnx(bnModel(opset, 5), { source: 'bn.onnx' }), /bn\.onnx: node '\/bn\/BatchNormalization' \(BatchNormalization\): training-mode batch normalisation .*5 outputs.*eval mode/);
  }
  assert.throws(() => importOnnx(bnModel(6, 1), { source: 'bn.onnx' }), /training-mode batch normalisation .*is_test=0/);
  assert.throws(() => importOnnx(bnModel(15, 3, [int('training_mode', 1)]), { source: 'bn.onnx' }), /training_mode=1/);
  // the inference forms still import and match onnxruntime (which has no opset-6 BatchNormalization)
  assert.equal(importOnnx(bnModel(6, 1, [int('is_test', 1)])).params.length, 4);
  for (const opset of [9, 15]) {
    const err = await maxError(bnModel(opset, 1), { x: [2, 3, 5, 6] });
    assert.ok(err < 1e-5, `opset ${opset}: max error ${err}`);
  }
});

test("host shape arithmetic is float32, as onnxruntime's: interpolate(scale_factor=0.7) on 10 gives 7", async () => {
  // sizes = Cast(Floor(Cast(shape[2:4], float) * 0.7f), int64), as torch writes F.interpolate(scale_factor=0.7)
  const bytes = onnxModel({
    opset: 13,
    inputs: [{ name: 'x', dims: ['N', 3, 10, 10] }],
    nodes: [
      constant('scale', [], [0.7]),
      { op: 'Shape', inputs: ['x'], outputs: ['s'] },
      { op: 'Slice', inputs: ['s', 'two', 'four'], outputs: ['hw'] },
      { op: 'Cast', inputs: ['hw'], outputs: ['hwf'], attrs: [int('to', 1)] },
      { op: 'Mul', inputs: ['hwf', 'scale'], outputs: ['m'] },
      { op: 'Floor', inputs: ['m'], outputs: ['fl'] },
      { op: 'Cast', inputs: ['fl'], outputs: ['hwi'], attrs: [int('to', 7)] },
      { op: 'Slice', inputs: ['s', 'zero', 'two'], outputs: ['nc'] },
      { op: 'Concat', inputs: ['nc', 'hwi'], outputs: ['sizes'], attrs: [int('axis', 0)] },
      { op: 'Resize', inputs: ['x', '', '', 'sizes'], outputs: ['y'], attrs: [str('mode', 'linear')] },
    ],
    inits: [i64('two', [2]), i64('four', [4]), i64('zero', [0])],
    outputs: ['y'],
  });
  assert.deepEqual(importOnnx(bytes, { symbolicBatch: true }).outputs[0].shape, ['N', 3, 7, 7]);
  assert.ok((await maxError(bytes, { x: [2, 3, 10, 10] }, { symbolicBatch: true })) < 1e-5);
});

test('a static Cast to float16 or bfloat16 rounds to that precision (it truncated to an integer)', async () => {
  for (const to of [10, 16]) {
    const bytes = onnxModel({
      opset: 13,
      inputs: [{ name: 'x', dims: [1, 4] }],
      nodes: [
        constant('k', [4], [0.5, 1.7, -3.14159, 1000.3]),
        { op: 'Cast', inputs: ['k'], outputs: ['k16'], attrs: [int('to', to)] },
        { op: 'Cast', inputs: ['k16'], outputs: ['k32'], attrs: [int('to', 1)] },
        { op: 'Mul', inputs: ['x', 'k32'], outputs: ['y'] },
      ],
      outputs: ['y'],
    });
    const err = await maxError(bytes, { x: [1, 4] });
    assert.equal(err, 0, `to=${to}: max error ${err}`);
  }
});

/** A network the importer translates exactly: one 1x1 Conv, 3 -> 3 channels. */
const ONE_CONV = () => onnxModel({
  opset: 13,
  inputs: [{ name: 'image', dims: ['batch', 3, 'h', 'w'] }],
  nodes: [{ op: 'Conv', inputs: ['image', 'w'], outputs: ['y'] }],
  inits: [f('w', [3, 3, 1, 1])],
  outputs: ['y'],
});

/**
 * nearest 13 -> 2 -> 13 (asymmetric, round_prefer_ceil): one of the documented float32 ties where the importer's
 * index differs from onnxruntime's (docs/import.md), standing for any mistranslation the import command would
 * catch; spatially dynamic, so a run at data.size 13 takes it.
 */
const TIE = () => onnxModel({
  opset: 13,
  inputs: [{ name: 'image', dims: ['batch', 3, 'h', 'w'] }],
  nodes: [
    { op: 'Shape', inputs: ['image'], outputs: ['s'] },
    { op: 'Slice', inputs: ['s', 'zero', 'two'], outputs: ['nc'] },
    { op: 'Concat', inputs: ['nc', 'small'], outputs: ['sz'], attrs: [int('axis', 0)] },
    { op: 'Resize', inputs: ['image', '', '', 'sz'], outputs: ['d'], attrs: [str('mode', 'nearest'), str('coordinate_transformation_mode', 'asymmetric'), str('nearest_mode', 'round_prefer_ceil')] },
    { op: 'Resize', inputs: ['d', '', '', 's'], outputs: ['y'], attrs: [str('mode', 'nearest')] },
  ],
  inits: [i64('zero', [0]), i64('two', [2]), i64('small', [2, 2])],
  outputs: ['y'],
});
const tieConfig = (file: string) => loadConfig(undefined, [`model.network.onnx=${file}`, 'data.size=13', 'run.id=tie']);

test('a network the importer translates wrongly is refused when a process starts (a SetupError, exit 78), naming the file and the difference', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'review24-'));
  try {
    const file = join(dir, 'tie.onnx');
    writeFileSync(file, TIE());
    const refused = (e: unknown) => {
      assert.ok(e instanceof SetupError, String(e));
      assert.equal(exitCodeFor(e), CONFIG_EXIT_CODE);
      assert.match(e.message, new RegExp(`${file.replace(/[.]/g, '\\.')}: the imported network does not compute what onnxruntime computes .*batch 2.*max \\|difference\\| \\d`));
      return true;
    };
    // the single-process loop's (and the demo's) entry point; the orchestrator's main, the worker runtime, the eval
    // and export commands await the same checkNetworkOf
    await assert.rejects(runSingleProcess(tieConfig(file)), refused);
    await assert.rejects(checkNetworkOf(tieConfig(file)), refused);
    // data code does no network check (round 25: it ran inside openRunDataset)
    assert.ok((await openRunDataset(tieConfig(file), 'train')).size > 0);
    assert.equal(isNetworkChecked(policySpecOf(tieConfig(file)).network!), false);
    // the same check through the import command
    const r = await importReport(file, { height: 13, width: 13 });
    assert.equal(r.forward?.ok, false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the orchestrator's periodic evaluation path runs no forward check: importedPolicy only imports (the check ran at start)", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'review24-'));
  try {
    // a network that fails the check: a shapes or digest lookup mid-run (PeriodicEvaluator.run: paramShapesOf,
    // baseDigestOf) neither refuses it nor checks it, so it did no onnxruntime work on the dispatch loop
    const bad = join(dir, 'tie.onnx');
    writeFileSync(bad, TIE());
    const config = tieConfig(bad);
    assert.deepEqual([...paramShapesOf(config).keys()], ['log_std']); // the network has no parameters
    assert.match(baseDigestOf(policySpecOf(config))!, /^[0-9a-f]{64}$/);
    assert.equal(isNetworkChecked(policySpecOf(config).network!), false);
    // a network checked at start is recorded once per process, whatever the resolution it is later built at
    const good = join(dir, 'good.onnx');
    writeFileSync(good, ONE_CONV());
    const goodConfig = loadConfig(undefined, [`model.network.onnx=${good}`, 'data.size=13', 'run.id=good']);
    await checkNetworkOf(goodConfig);
    assert.equal(isNetworkChecked(policySpecOf(goodConfig).network!), true);
    assert.equal(isNetworkChecked(policySpecOf(goodConfig, { height: 40, width: 30 }).network!), true);
    assert.deepEqual(paramShapesOf(goodConfig).get('w'), [3, 3, 1, 1]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a file replaced under the same path after the start-up check is refused, never used unchecked', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'review24-'));
  try {
    const file = join(dir, 'net.onnx');
    const good = ONE_CONV();
    writeFileSync(file, good);
    const config = loadConfig(undefined, [`model.network.onnx=${file}`, 'data.size=13', 'run.id=replaced']);
    await checkNetworkOf(config);
    // an import at a new resolution reads the file again: the same bytes are accepted
    const p = importedPolicy(policySpecOf(config, { height: 20, width: 20 }).network!);
    assert.equal(p.baseDigest, sha256Hex(good));
    assert.deepEqual(p.net.params.map((q) => q.name), ['w']);
    // replaced mid-run by a network the importer translates wrongly; a later evaluation at a new resolution (the
    // periodic evaluator's whole photographs) builds the network again: refused, naming the file, not used
    writeFileSync(file, TIE());
    const later = policySpecOf(config, { height: 40, width: 30 }).network!;
    assert.throws(() => importedPolicy(later), new RegExp(`model\\.network: ${file.replace(/[.]/g, '\\.')} changed while this process ran \\(sha256 ${sha256Hex(good).slice(0, 12)}, now ${sha256Hex(TIE()).slice(0, 12)}\\).*restart the process`));
    assert.equal(isNetworkChecked(later), true, 'what this process read and checked');
    await assert.rejects(checkNetworkOf(config), /changed while this process ran/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a float constant gathered along axis 1 is built on constants where folding cannot (it was refused)', async () => {
  const bytes = onnxModel({
    opset: 13,
    inputs: [{ name: 'x', dims: [2, 2] }],
    nodes: [constant('k', [2, 3], [1, 2, 3, 4, 5, 6]), { op: 'Gather', inputs: ['k', 'i'], outputs: ['g'], attrs: [int('axis', 1)] }, { op: 'Mul', inputs: ['x', 'g'], outputs: ['y'] }],
    inits: [i64('i', [2, 0])],
    outputs: ['y'],
  });
  assert.ok((await maxError(bytes, { x: [2, 2] })) < 1e-6);
});

test('Where on static values broadcasts (it needed equal shapes)', async () => {
  // mask [2,1] against values [1,3] and a scalar: the [2,3] result, as onnxruntime
  const bytes = onnxModel({
    opset: 13,
    inputs: [{ name: 'x', dims: [2, 3] }],
    nodes: [
      constant('v', [1, 3], [1, 2, 3]), constant('zero', [], [0]), constant('cut', [2, 1], [0.5, -0.5]),
      constant('half', [2, 1], [0.5, 7]),
      { op: 'Equal', inputs: ['cut', 'half'], outputs: ['mask'] },
      { op: 'Where', inputs: ['mask', 'v', 'zero'], outputs: ['w'] },
      { op: 'Mul', inputs: ['x', 'w'], outputs: ['y'] },
    ],
    outputs: ['y'],
  });
  assert.ok((await maxError(bytes, { x: [2, 3] })) < 1e-6);
});

test('an error from a builder or from folding names the file and the node', () => {
  // x.view(B + 1, ...): a sum with the run-time batch, which the importer does not represent (a product it does)
  const bytes = onnxModel({
    opset: 13,
    inputs: [{ name: 'x', dims: ['batch', 3, 4, 4] }],
    nodes: [
      { op: 'Shape', inputs: ['x'], outputs: ['s'] },
      { op: 'Gather', inputs: ['s', 'zero0'], outputs: ['n'], attrs: [int('axis', 0)] },
      { op: 'Add', inputs: ['n', 'three'], outputs: ['n3'], name: '/Add_b' },
      { op: 'Unsqueeze', inputs: ['n3', 'zero'], outputs: ['n3u'] },
      { op: 'Concat', inputs: ['n3u', 'hw'], outputs: ['shape'], attrs: [int('axis', 0)] },
      { op: 'Reshape', inputs: ['x', 'shape'], outputs: ['y'] },
    ],
    inits: [i64('zero', [0]), i64('zero0', [0], []), i64('three', [3], []), i64('hw', [4, 4])],
    outputs: ['y'],
  });
  assert.throws(() => importOnnx(bytes, { source: 'view.onnx', symbolicBatch: true }), /^Error: view\.onnx: node '\/Add_b' \(Add\): Add of 'N' and '3' depends on a run-time dimension/);
  // a builder's own message (broadcasting) gets the node too
  const add = onnxModel({ opset: 13, inputs: [{ name: 'x', dims: [1, 3, 6, 6] }], nodes: [{ op: 'Add', inputs: ['x', 'b'], outputs: ['y'], name: '/up/Add' }], inits: [f('b', [1, 3, 8, 8])], outputs: ['y'] });
  assert.throws(() => importOnnx(add, { source: 'add.onnx' }), /^Error: add\.onnx: node '\/up\/Add' \(Add\): Add: shapes \[1,3,6,6\] and \[1,3,8,8\] do not broadcast/);
});

/**
 * x.view(B * C, H, W) as torch.onnx.export writes it (B and C read from x's Shape), a depthwise Conv on each plane as
 * one channel, then view(B, 2 * C, H, W) back; or the same with view(-1, H, W) (`inferred`).
 */
const viewBatchTimesChannels = (inferred: boolean) => onnxModel({
  opset: 13,
  inputs: [{ name: 'x', dims: ['batch', 3, 5, 4] }],
  nodes: [
    { op: 'Shape', inputs: ['x'], outputs: ['s'] },
    { op: 'Gather', inputs: ['s', 'zero0'], outputs: ['b'], attrs: [int('axis', 0)] },
    { op: 'Gather', inputs: ['s', 'one0'], outputs: ['c'], attrs: [int('axis', 0)] },
    { op: 'Mul', inputs: ['b', 'c'], outputs: ['bc'] },
    { op: 'Unsqueeze', inputs: ['bc', 'zero'], outputs: ['bcu'] },
    { op: 'Concat', inputs: [inferred ? 'minus1' : 'bcu', 'hw'], outputs: ['to'], attrs: [int('axis', 0)] },
    { op: 'Reshape', inputs: ['x', 'to'], outputs: ['planes'] },
    { op: 'Unsqueeze', inputs: ['planes', 'one'], outputs: ['p1'] },
    { op: 'Conv', inputs: ['p1', 'w', 'bias'], outputs: ['q'], attrs: [{ name: 'pads', type: 7, ints: [1, 1, 1, 1] }] },
    { op: 'Unsqueeze', inputs: ['b', 'zero'], outputs: ['bu'] },
    { op: 'Mul', inputs: ['c', 'two'], outputs: ['c2'] },
    { op: 'Unsqueeze', inputs: ['c2', 'zero'], outputs: ['c2u'] },
    { op: 'Concat', inputs: ['bu', 'c2u', 'hw'], outputs: ['back'], attrs: [int('axis', 0)] },
    { op: 'Reshape', inputs: ['q', 'back'], outputs: ['y'] },
  ],
  inits: [i64('zero', [0]), i64('one', [1]), i64('zero0', [0], []), i64('one0', [1], []), i64('two', [2], []), i64('minus1', [-1]), i64('hw', [5, 4]), f('w', [2, 1, 3, 3]), f('bias', [2])],
  outputs: ['y'],
});

test('Reshape to the run-time batch times static sizes (x.view(B * C, H, W), view(-1, H, W)) imports exactly, as onnxruntime runs the file', async () => {
  for (const inferred of [false, true]) {
    const bytes = viewBatchTimesChannels(inferred);
    const net = importOnnx(bytes, { source: 'view.onnx', symbolicBatch: true });
    assert.deepEqual(net.outputs[0]!.shape, ['N', 6, 5, 4]);
    for (const batch of [1, 2, 3]) assert.ok((await maxError(bytes, { x: [batch, 3, 5, 4] }, { symbolicBatch: true })) < 1e-6, `batch ${batch}`);
  }
});

test('a product dimension trains: the gradient through view(B * C, H, W) and back equals finite differences', async () => {
  const net = importOnnx(viewBatchTimesChannels(false), { source: 'view.onnx', symbolicBatch: true });
  const r = await gradCheck([{ name: 'x', shape: ['N', 3, 5, 4] }, { name: 'w', shape: [2, 1, 3, 3] }], (g, [x, w]) =>
    net.build(g, { x: x! }, (p) => (p.name === 'w' ? w! : g.constant(net.weights.get(p.name)!.data, p.shape)))[0]!);
  assert.ok(r.relError < 1e-2, `analytic ${r.analytic} vs numeric ${r.numeric} (relative error ${r.relError})`);
  assert.ok(Math.abs(r.analytic) > 1e-4, 'the check must exercise a non-zero gradient');
});

test('Concat off-axis sizes and Reshape element counts are checked at import, naming the node', () => {
  // a U-Net skip at an odd size: 15 -> pool 7 -> up 14, concatenated with the 15x15 input (onnxruntime's shape
  // inference failed later, naming no node of the user's)
  const unet = onnxModel({
    opset: 13,
    inputs: [{ name: 'image', dims: ['batch', 3, 15, 15] }],
    nodes: [
      { op: 'MaxPool', inputs: ['image'], outputs: ['p'], attrs: [{ name: 'kernel_shape', type: 7, ints: [2, 2] }, { name: 'strides', type: 7, ints: [2, 2] }] },
      { op: 'Resize', inputs: ['p', '', 'up'], outputs: ['u'], attrs: [str('mode', 'nearest')] },
      { op: 'Concat', inputs: ['u', 'image'], outputs: ['y'], attrs: [int('axis', 1)], name: '/skip/Concat' },
    ],
    inits: [{ name: 'up', dims: [4], values: [1, 1, 2, 2] }],
    outputs: ['y'],
  });
  assert.throws(() => importOnnx(unet, { source: 'unet.onnx', symbolicBatch: true }), /unet\.onnx: node '\/skip\/Concat' \(Concat\): concat along axis 1: \[N,3,15,15\] does not match \[N,3,14,14\]/);
  const reshape = onnxModel({ opset: 13, inputs: [{ name: 'x', dims: ['batch', 3, 4, 4] }], nodes: [{ op: 'Reshape', inputs: ['x', 'to'], outputs: ['y'], name: '/view' }], inits: [i64('to', [0, 3, 5, 3])], outputs: ['y'] });
  assert.throws(() => importOnnx(reshape, { source: 'view.onnx', symbolicBatch: true }), /view\.onnx: node '\/view' \(Reshape\): reshape \[N,3,4,4\] -> \[N,3,5,3\]: 48 elements per run-time size cannot become 45/);
});

test('a file exported with a fixed batch (no dynamic_axes) is refused, saying to re-export with dynamic axes', () => {
  // x.view(1, 3, -1) ... view(1, 3, 8, 8) as torch.onnx.export folds them for the example's batch of 1: it
  // imported with output [1,3,8,8] for a batch of N
  const view = onnxModel({
    opset: 13,
    inputs: [{ name: 'image', dims: [1, 3, 8, 8] }],
    nodes: [
      { op: 'Reshape', inputs: ['image', 'onnx::Reshape_5'], outputs: ['r'] },
      { op: 'Softmax', inputs: ['r'], outputs: ['s'], attrs: [int('axis', -1)] },
      { op: 'Reshape', inputs: ['s', 'onnx::Reshape_7'], outputs: ['y'] },
    ],
    inits: [i64('onnx::Reshape_5', [1, 3, 64]), i64('onnx::Reshape_7', [1, 3, 8, 8])],
    outputs: ['y'],
  });
  assert.throws(() => importOnnx(view, { source: 'static.onnx', symbolicBatch: true }), /static\.onnx: input 'image' declares a fixed batch of 1 .*re-export with torch\.onnx\.export\(\.\.\., dynamic_axes=\{'image': \{0: 'batch'\}\}\)/);
  // without a run-time batch asked for, the file imports as it is
  assert.deepEqual(importOnnx(view).outputs[0].shape, [1, 3, 8, 8]);
});

test('inputs of other element types, short float_data and opsets outside 6-20 are refused by name', () => {
  const relu = (elemType: number, opset = 13) => onnxModel({ opset, inputs: [{ name: 'image', dims: [1, 3, 4, 4], elemType }], nodes: [{ op: 'Relu', inputs: ['image'], outputs: ['y'] }], outputs: ['y'] });
  for (const [code, name] of [[10, 'FLOAT16'], [7, 'INT64']] as const) {
    assert.throws(() => importOnnx(relu(code), { source: 'typed.onnx' }), new RegExp(`typed\\.onnx: input 'image' is ${name}; only float32 inputs`));
  }
  // a double input is computed in float32 on its own, but not as a policy (onnxruntime must run the file on float32 images)
  assert.equal(importOnnx(relu(11)).inputs.length, 1);
  assert.throws(() => importOnnx(relu(11), { source: 'typed.onnx', symbolicBatch: true }), /input 'image' is DOUBLE/);
  assert.throws(() => importOnnx(relu(1, 21), { source: 'new.onnx' }), /new\.onnx: uses opset 21; opsets 6-20 are supported/);
  assert.throws(() => importOnnx(relu(1, 5), { source: 'old.onnx' }), /old\.onnx: uses opset 5/);
  // float_data shorter than the dims read the missing values as zeros
  const short = modelTensor({ name: 'w', dims: [3], values: [] });
  short.rawData = new Uint8Array();
  short.floatData = [0.5, 2];
  assert.throws(() => decodeTensor(short, 'short.onnx'), /short\.onnx: tensor w holds 2 values, its shape \[3\] needs 3/);
});

test("a policy's image is the first input that is not an initializer (keep_initializers_as_inputs)", () => {
  const bytes = onnxModel({
    opset: 13,
    inputs: [{ name: 'conv.weight', dims: [3, 3, 1, 1] }, { name: 'image', dims: ['batch', 3, 4, 4] }],
    nodes: [{ op: 'Conv', inputs: ['image', 'conv.weight'], outputs: ['y'] }],
    inits: [f('conv.weight', [3, 3, 1, 1])],
    outputs: ['y'],
  });
  const dir = mkdtempSync(join(tmpdir(), 'review24-'));
  try {
    const file = join(dir, 'kept.onnx');
    writeFileSync(file, bytes);
    assert.equal(importedPolicy({ onnx: file, height: 4, width: 4 }).contract.image, 'image');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ConstantOfShape of a shape holding the run-time batch (torch.zeros_like / full_like) is built as a tensor', async () => {
  const bytes = onnxModel({
    opset: 13,
    inputs: [{ name: 'image', dims: ['batch', 3, 4, 4] }],
    nodes: [
      { op: 'Shape', inputs: ['image'], outputs: ['s'] },
      { op: 'ConstantOfShape', inputs: ['s'], outputs: ['half'], attrs: [{ name: 'value', type: 4, t: modelTensor({ name: 'v', dims: [1], values: [0.5] }) }] },
      { op: 'Mul', inputs: ['image', 'half'], outputs: ['y'] },
    ],
    outputs: ['y'],
  });
  for (const batch of [1, 3]) {
    const err = await maxError(bytes, { image: [batch, 3, 4, 4] }, { symbolicBatch: true });
    assert.ok(err < 1e-6, `batch ${batch}: max error ${err}`);
  }
});
