// The importer on whole networks: a graph written the way torch.onnx.export writes one (dynamic sizes,
// shape arithmetic), the project's own U-Net re-imported, weights from a state dict, and bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import onnxProto from 'onnx-proto';
import { Graph } from '../../lib/graph/graph.ts';
import { decodeModel, serialize } from '../../lib/graph/onnx.ts';
import { importOnnx } from '../../lib/import/onnx-import.ts';
import { checkPolicyContract } from '../../lib/import/policy-contract.ts';
import { weightsFromStateDict } from '../../lib/import/state-dict.ts';
import { importReport, reportPassed } from '../../lib/import/report.ts';
import { CONFORMANCE_ROOT } from './conformance.ts';
import { projectUnetOnnx, torchGroupNormOnnx, torchStyleOnnx } from './models.ts';
import { stateDictFile } from './safetensors-writer.ts';

const { onnx } = onnxProto;

const withDir = async (f: (dir: string) => Promise<void>) => {
  const dir = mkdtempSync(join(tmpdir(), 'import-'));
  try {
    await f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

test('a torch-style graph with dynamic sizes imports at two resolutions and matches onnxruntime on the original', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'net.onnx');
    writeFileSync(file, torchStyleOnnx());
    for (const [height, width] of [[8, 12], [16, 16]]) {
      const r = await importReport(file, { height, width });
      assert.equal(r.error, undefined);
      assert.ok(reportPassed(r), JSON.stringify(r, null, 1));
      assert.deepEqual(r.inputs[0].shape, ['N', 3, height, width]);
      assert.ok(r.forward!.relError < 1e-5);
    }
  });
});

test('group norm and interpolation sizes as PyTorch writes them import and match onnxruntime', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'gn.onnx');
    writeFileSync(file, torchGroupNormOnnx());
    for (const [height, width] of [[8, 8], [6, 10]]) {
      const r = await importReport(file, { height, width });
      assert.ok(reportPassed(r), JSON.stringify(r, null, 1));
      assert.ok(r.ops.some((o) => o.op === 'Floor'));
      // The instance norm's constant scale and shift are parameters too (PyTorch writes them as initializers).
      assert.equal(r.parameters.count, 6 * 27 + 6 + 3 + 3 + 6 + 6 + 18 + 3);
    }
  });
});

test('static shape arithmetic is folded: the built graph has no Shape, Gather or Unsqueeze nodes', () => {
  const net = importOnnx(torchStyleOnnx(), { symbolicBatch: true, inputShapes: { input: ['N', 3, 8, 8] } });
  const g = new Graph();
  const [y] = net.build(g, { input: g.input('input', ['N', 3, 8, 8]) }, (p) => g.input(p.name, p.shape));
  g.output('y', y);
  const ops = new Set(decodeModel(serialize(g)).graph!.node!.map((n) => n.opType));
  for (const folded of ['Shape', 'Gather', 'Unsqueeze', 'Constant']) assert.ok(!ops.has(folded), `${folded} left in the graph`);
  assert.deepEqual(y.shape, ['N', 3, 8, 8]);
  // Parameters keep the state dict's names and know what reads them.
  assert.deepEqual(net.params.map((p) => p.name), ['enc.conv.weight', 'enc.conv.bias', 'enc.bn.weight', 'enc.bn.bias', 'enc.bn.running_mean', 'enc.bn.running_var', 'mid.weight', 'mid.bias', 'head.weight', 'head.bias']);
  assert.equal(net.params[0].role, 'conv-weight');
  assert.equal(net.params[4].role, 'running-stat');
});

test("the project's own U-Net, exported and re-imported, computes what the original does", async () => {
  await withDir(async (dir) => {
    const { bytes, params } = projectUnetOnnx();
    const file = join(dir, 'unet.onnx');
    writeFileSync(file, bytes);
    const r = await importReport(file);
    assert.ok(reportPassed(r), JSON.stringify(r, null, 1));
    const count = [...params].filter(([n]) => n !== 'log_std').reduce((s, [, t]) => s + t.data.length, 0);
    assert.equal(r.parameters.count, count);
  });
});

test('weights from a safetensors state dict replace the initializers (module. prefix and integer buffers tolerated)', async () => {
  await withDir(async (dir) => {
    const bytes = torchStyleOnnx();
    const net = importOnnx(bytes, { symbolicBatch: true, inputShapes: { input: ['N', 3, 8, 8] } });
    const dict: Parameters<typeof stateDictFile>[0] = { 'module.enc.bn.num_batches_tracked': { dtype: 'I64', shape: [], values: [7] } };
    for (const p of net.params) dict[`module.${p.name}`] = { dtype: 'F32', shape: p.shape, values: Array.from(net.weights.get(p.name)!.data, (v) => v * 0.5) };
    const sd = join(dir, 'weights.safetensors');
    writeFileSync(sd, stateDictFile(dict));
    const w = weightsFromStateDict(net, readFileSync(sd), sd);
    assert.equal(w.get('mid.weight')!.data[3], net.weights.get('mid.weight')!.data[3] * 0.5);
    const onnxFile = join(dir, 'net.onnx');
    writeFileSync(onnxFile, bytes);
    const r = await importReport(onnxFile, { weights: sd, height: 8, width: 8 });
    assert.ok(reportPassed(r), JSON.stringify(r, null, 1));
  });
});

test('bad input is refused with the file and the problem named', async () => {
  await withDir(async (dir) => {
    const bytes = torchStyleOnnx();
    const net = importOnnx(bytes, { source: 'net.onnx', symbolicBatch: true, inputShapes: { input: ['N', 3, 8, 8] } });

    // A truncated file.
    assert.throws(() => importOnnx(bytes.slice(0, Math.floor(bytes.length * 0.6)), { source: 'cut.onnx' }), /cut\.onnx: (not a valid ONNX model|.*truncated)/);
    assert.throws(() => importOnnx(new Uint8Array(), { source: 'empty.onnx' }), /empty\.onnx: the file is empty/);

    // An op without a builder or rule: named with its node and the supported list.
    assert.throws(
      () => importOnnx(torchStyleOnnx({ replaceOp: ['LeakyRelu', 'Celu'] }), { source: 'celu.onnx' }),
      (e: Error) => /celu\.onnx: node '\/LeakyRelu_a1' uses op Celu/.test(e.message) && /supported ops: .*Conv.*MaxPool/.test(e.message),
    );

    // Dynamic spatial sizes with no size given.
    assert.throws(() => importOnnx(bytes, { source: 'net.onnx', symbolicBatch: true }), /net\.onnx: input 'input' has the dynamic dimension 'height'/);

    // Contract: wrong output channels, and a network whose input is not an image.
    const four = importOnnx(torchStyleOnnx({ outChannels: 4 }), { source: 'four.onnx', symbolicBatch: true, inputShapes: { input: ['N', 3, 8, 8] } });
    assert.throws(() => checkPolicyContract(four), /four\.onnx: contract: the output 'output' must be \[N,3,H,W\] like the image \[N,3,8,8\], the graph computes \[N,4,8,8\]/);
    const linearFile = join(CONFORMANCE_ROOT, 'pytorch-converted/test_Linear/model.onnx');
    const linear = importOnnx(readFileSync(linearFile), { source: linearFile });
    assert.throws(() => checkPolicyContract(linear), /test_Linear\/model\.onnx: contract: the image input '0' must be \[N,3,H,W\], the graph declares \[4,10\]/);

    // State dicts: a missing tensor, a misshapen one, a truncated file.
    const full = Object.fromEntries(net.params.map((p) => [p.name, { dtype: 'F32' as const, shape: p.shape, values: Array.from(net.weights.get(p.name)!.data) }]));
    const { 'mid.bias': _dropped, ...missing } = full;
    assert.throws(() => weightsFromStateDict(net, stateDictFile(missing), 'missing.safetensors'), /missing\.safetensors: missing 1 tensor\(s\) that net\.onnx needs: 'mid\.bias'/);
    const misshapen = { ...full, 'head.weight': { dtype: 'F32' as const, shape: [3, 8, 1, 1], values: new Array(24).fill(0) } };
    assert.throws(() => weightsFromStateDict(net, stateDictFile(misshapen), 'bad.safetensors'), /bad\.safetensors: tensor 'head\.weight' has shape \[3,8,1,1\], but net\.onnx needs \[3,16,1,1\] \(read by Conv '\/Conv_output'\)/);
    const whole = stateDictFile(full);
    assert.throws(() => weightsFromStateDict(net, whole.slice(0, whole.length - 10), 'cut.safetensors'), /cut\.safetensors: tensor '.*' ends at byte \d+, past the end of the file/);
  });
});

test('extra inputs (a flow policy time embedding) must be named; then the contract holds', () => {
  const vi = (name: string, dims: Array<number | string>) => onnx.ValueInfoProto.create({
    name, type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  });
  const graph = onnx.GraphProto.create({
    name: 'g',
    node: [onnx.NodeProto.create({ opType: 'Add', name: 'add_t', input: ['image', 't_emb'], output: ['out'] })],
    input: [vi('image', ['batch', 3, 8, 8]), vi('t_emb', ['batch', 3, 1, 1])],
    output: [vi('out', ['batch', 3, 8, 8])],
  });
  const bytes = onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph })).finish();
  const net = importOnnx(bytes, { source: 'flow.onnx', symbolicBatch: true });
  assert.throws(() => checkPolicyContract(net), /flow\.onnx: contract: input 't_emb' \[N,3,1,1\] is neither the image nor named as an extra input/);
  assert.throws(() => checkPolicyContract(net, { extraInputs: ['time'] }), /contract: input 't_emb'/);
  const c = checkPolicyContract(net, { image: 'image', extraInputs: ['t_emb'] });
  assert.deepEqual(c, { image: 'image', extraInputs: ['t_emb'], output: 'out', shape: ['N', 3, 8, 8] });
});
