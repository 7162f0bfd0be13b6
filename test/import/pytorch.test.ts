// A network whose ONNX the project did not write (issue #14): a small residual U-Net written in PyTorch
// (GroupNorm, SiLU, GELU, strided convolution, PixelShuffle, bilinear interpolation, a skip concatenation),
// exported by torch.onnx.export (opset 17) with its state dict as safetensors. The fixture and the script
// that made it are committed (test/fixtures/pytorch/, scripts/pytorch/), so this test needs no PyTorch.
// Checked: the import against PyTorch's own output and against onnxruntime running the original file; then
// the network trains through the pipeline, SFT then GRPO, and raises the evaluation reward: full fine-tuning
// in the single-process loop, and LoRA in the distributed pipeline (nats-server and the four roles as
// processes), which must end on the single-process loop's checkpoint bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { loadConfig, type RunConfig } from '../../lib/config/index.ts';
import { openRunDataset } from '../../lib/config/dataset.ts';
import { runSingleProcess } from '../../lib/local/single-process.ts';
import { runLocal } from '../../lib/local/local-run.ts';
import { decodeCheckpoint, encodeCheckpoint, sha256Hex, type TensorMap } from '../../lib/checkpoint/index.ts';
import { evaluate, firstSamples } from '../../lib/eval/evaluate.ts';
import { initialParamsOf, paramShapes, policySpecOf } from '../../lib/models/bundle.ts';
import { readStateDict } from '../../lib/import/state-dict.ts';
import { stateDictFile } from './safetensors-writer.ts';
import { Graph } from '../../lib/graph/graph.ts';
import { serialize } from '../../lib/graph/onnx.ts';
import { GraphSession } from '../../lib/graph/runtime.ts';
import { importOnnx } from '../../lib/import/onnx-import.ts';
import { weightsFromStateDict } from '../../lib/import/state-dict.ts';
import { importReport, reportPassed } from '../../lib/import/report.ts';

const FIXTURE = join(import.meta.dirname, '../fixtures/pytorch/restoration-net');
const ONNX = `${FIXTURE}.onnx`;
const WEIGHTS = `${FIXTURE}.safetensors`;
const meta = JSON.parse(readFileSync(`${FIXTURE}.json`, 'utf8')) as { torch: string; opset: number; parameters: number; input_shape: number[]; input: number[]; output: number[] };

const SIZE = 16;
const dir = mkdtempSync(join(tmpdir(), 'import-pytorch-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const RUN = [
  `data.size=${SIZE}`, 'data.source.kind=procedural', 'data.source.count=32', 'sft.batchSize=4', 'grpo.groupSize=4', 'grpo.samplesPerBatch=2',
  'grpo.maxStaleness=0', 'grpo.advantageMode=scalar', 'eval.samples=8', 'eval.everyVersions=0', 'sft.lr=3e-3', 'optim.lr=1e-4',
  'orchestrator.leaseSeconds=30', 'orchestrator.heartbeatSeconds=1', `model.network.onnx=${ONNX}`, `model.network.weights=${WEIGHTS}`,
];
const LORA = ['model.adapter.kind=lora', 'model.adapter.rank=4', 'model.adapter.alpha=4', 'model.adapter.trainBiases=true'];

/** Evaluation reward (mean over the eval split's first samples) of the start, the result, and doing nothing. */
async function rewardsOf(config: RunConfig, start: TensorMap, end: TensorMap): Promise<{ start: number; end: number; identity: number }> {
  const samples = await firstSamples(await openRunDataset(config, 'eval'), config.eval.samples);
  const ev = await evaluate(config, samples, { start: { kind: 'mean', params: start }, end: { kind: 'mean', params: end }, identity: { kind: 'identity' } });
  return { start: ev.reports.start!.reward, end: ev.reports.end!.reward, identity: ev.reports.identity!.reward };
}

test('the PyTorch export imports: the state dict maps onto it, and the forward matches PyTorch and onnxruntime', async () => {
  assert.equal(meta.opset, 17);
  const net = importOnnx(readFileSync(ONNX), { source: ONNX, symbolicBatch: true, inputShapes: { image: ['N', 3, SIZE, SIZE] } });
  const weights = weightsFromStateDict(net, readFileSync(WEIGHTS), WEIGHTS);
  // every tensor of the state dict is a parameter (torch did not rename or deduplicate any)
  assert.equal(net.params.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0), meta.parameters);
  assert.deepEqual(Object.keys(net.opCounts).filter((op) => ['InstanceNormalization', 'DepthToSpace', 'Resize', 'Erf', 'Sigmoid'].includes(op)).sort(), ['DepthToSpace', 'Erf', 'InstanceNormalization', 'Resize', 'Sigmoid']);
  const g = new Graph();
  const image = g.input('image', ['N', 3, SIZE, SIZE]);
  const [residual] = net.build(g, { image }, (p) => g.constant(weights.get(p.name)!.data, p.shape, 'float32', `param.${p.name}`));
  g.output('residual', residual!);
  const session = await GraphSession.create(serialize(g));
  const got = (await session.run({ image: { data: Float32Array.from(meta.input), dims: meta.input_shape } })).residual!.data;
  await session.release();
  const scale = meta.output.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  const err = meta.output.reduce((m, x, i) => Math.max(m, Math.abs(x - got[i]!)), 0);
  assert.ok(scale > 1e-3, 'PyTorch output is trivially small');
  assert.ok(err <= 1e-4 * scale, `differs from PyTorch (torch ${meta.torch}) by ${err} (scale ${scale})`);
  // recovery-grpo import's checks: forward against onnxruntime running the original file with the state
  // dict's weights, the gradient against finite differences, the policy contract
  const report = await importReport(ONNX, { weights: WEIGHTS, height: SIZE, width: SIZE });
  assert.ok(reportPassed(report), JSON.stringify({ contract: report.contract, forward: report.forward, gradient: report.gradient, error: report.error }));
  assert.ok(report.forward!.relError <= 1e-4);
});

test('bad input through model.network: a truncated export, a state dict missing or misshapen a tensor, each named with its file', () => {
  const policyOf = (onnx: string, weights?: string) => paramShapes(policySpecOf(loadConfig(undefined, [`data.size=${SIZE}`, `model.network.onnx=${onnx}`, ...(weights ? [`model.network.weights=${weights}`] : [])])));
  const cut = join(dir, 'cut.onnx');
  const bytes = readFileSync(ONNX);
  writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
  assert.throws(() => policyOf(cut), new RegExp(`${cut.replace(/[.]/g, '\\.')}: (not a valid ONNX model|.*truncated)`));
  const dict = readStateDict(readFileSync(WEIGHTS), WEIGHTS);
  const rewrite = (edit: (name: string, shape: number[]) => number[] | null): Record<string, { dtype: 'F32'; shape: number[]; values: number[] }> =>
    Object.fromEntries([...dict].flatMap(([n, t]) => {
      const shape = edit(n, t.shape);
      return shape ? [[n, { dtype: 'F32' as const, shape, values: Array.from(t.data.subarray(0, shape.reduce((a, b) => a * b, 1))) }]] : [];
    }));
  const missing = join(dir, 'missing.safetensors');
  writeFileSync(missing, stateDictFile(rewrite((n, sh) => (n === 'mid.conv2.weight' ? null : sh))));
  assert.throws(() => policyOf(ONNX, missing), new RegExp(`missing\\.safetensors: missing 1 tensor\\(s\\) that .*restoration-net\\.onnx needs: 'mid\\.conv2\\.weight'`));
  const misshapen = join(dir, 'misshapen.safetensors');
  writeFileSync(misshapen, stateDictFile(rewrite((n, sh) => (n === 'fuse.weight' ? [16, 32, 3, 3] : sh))));
  assert.throws(() => policyOf(ONNX, misshapen), /misshapen\.safetensors: tensor 'fuse\.weight' has shape \[16,32,3,3\], but .*restoration-net\.onnx needs \[16,48,3,3\] \(read by Conv '\/fuse\/Conv'\)/);
});

test('single-process loop: the PyTorch network, fully fine-tuned, SFT then GRPO, raises the evaluation reward', { timeout: 120_000 }, async () => {
  const config = loadConfig(undefined, [...RUN, 'sft.steps=20', 'grpo.steps=4', 'run.id=pytorch-full']);
  const start = initialParamsOf(config);
  const r = await runSingleProcess(config, { params: initialParamsOf(config) });
  assert.equal(r.checkpoint.meta.version, 24);
  assert.equal(r.checkpoint.meta.extra?.base_digest, sha256Hex(`${sha256Hex(readFileSync(ONNX))}:${sha256Hex(readFileSync(WEIGHTS))}`));
  const rw = await rewardsOf(config, start, r.params);
  assert.ok(rw.end > rw.start, `evaluation reward ${rw.start} -> ${rw.end} did not rise`);
  assert.ok(rw.end > rw.identity, `evaluation reward ${rw.end} is not above the identity's ${rw.identity}`);
});

test('the distributed pipeline trains the PyTorch network with LoRA, ends on the single-process checkpoint, raises the evaluation reward', { timeout: 300_000 }, async () => {
  const out = mkdtempSync(join(dir, 'run-'));
  const log: string[] = [];
  let config: RunConfig | undefined;
  const summary = await runLocal({
    out, seed: 5, sftSteps: 20, steps: 3, overrides: [...RUN, ...LORA],
    rolloutWorkers: 1, rewardWorkers: 1, log: (l) => log.push(l), onStarted: (_s, info) => { config = info.config; },
  });
  assert.equal(summary.final_version, 23, log.slice(-20).join('\n'));
  const bytes = readFileSync(summary.final_checkpoint);
  const ck = decodeCheckpoint(bytes);
  assert.ok([...ck.params.keys()].every((n) => /\.lora_[AB]$/.test(n) || n.endsWith('.bias') || n === 'log_std'), [...ck.params.keys()].join(', '));
  const single = await runSingleProcess(config!);
  assert.equal(encodeCheckpoint(single.checkpoint).digest, sha256Hex(bytes), 'the two loops trained different adapters');
  const rw = await rewardsOf(config!, initialParamsOf(config!), ck.params);
  assert.ok(rw.end > rw.start, `evaluation reward ${rw.start} -> ${rw.end} did not rise`);
});
