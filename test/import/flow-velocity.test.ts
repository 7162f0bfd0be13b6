// An imported network as the flow family's velocity network (issue #14: both families can use an imported
// network). The fixture is a velocity field written in PyTorch, v(x, t_emb, y), exported by torch.onnx.export
// (scripts/pytorch/export-restoration-net.py); model.network.time and .condition name the inputs that receive
// t (as sinusoidal features, since the graph declares t_emb [N,16]) and the corrupted image. Checked: the
// import against PyTorch's output; the learner's rows recompute the rollout worker's log-probabilities; the
// single-process loop trains it (SFT, Flow-GRPO); the standalone ODE export equals the in-run evaluation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, parseConfig, type RunConfig } from '../../lib/config/index.ts';
import { FlowRunner } from '../../lib/flow/family.ts';
import { flowNoiseSeed, startNoise } from '../../lib/flow/rollout.ts';
import { firstFlowPass } from '../helpers/flow-group.ts';
import { Graph } from '../../lib/graph/graph.ts';
import { serialize } from '../../lib/graph/onnx.ts';
import { GraphSession } from '../../lib/graph/runtime.ts';
import { importOnnx } from '../../lib/import/onnx-import.ts';
import { importReport, reportPassed } from '../../lib/import/report.ts';
import { initialParamsOf, paramShapesOf, standalonePolicyModel } from '../../lib/models/bundle.ts';
import { runSingleProcess } from '../../lib/local/single-process.ts';
import { sha256Hex } from '../../lib/checkpoint/index.ts';

const FIXTURE = join(import.meta.dirname, '../fixtures/pytorch/velocity-net');
const ONNX = `${FIXTURE}.onnx`;
const SIZE = 16;

function flowConfig(model: Record<string, unknown> = {}): RunConfig {
  return parseConfig({
    data: { size: SIZE, source: { kind: 'procedural', count: 16 } },
    model: { family: 'flow', network: { onnx: ONNX, time: 't_emb', condition: 'y' }, ...model },
    flow: { steps: 4, evalSteps: 3, shift: 1, sde: { window: { size: 1, start: 'random' } } },
    grpo: { groupSize: 3, samplesPerBatch: 2, steps: 2, advantageMode: 'scalar', beta: 0.01 },
    sft: { steps: 2, batchSize: 2 },
    reward: { expression: 'ssim', weights: {} },
  });
}

test('the PyTorch velocity network imports with its three inputs and matches PyTorch', async () => {
  const meta = JSON.parse(readFileSync(`${FIXTURE}.json`, 'utf8')) as { inputs: Record<string, number[]>; output: number[] };
  const net = importOnnx(readFileSync(ONNX), { source: ONNX, symbolicBatch: true, inputShapes: { x: ['N', 3, SIZE, SIZE], y: ['N', 3, SIZE, SIZE] } });
  assert.deepEqual(net.inputs.map((i) => [i.name, i.shape.join(',')]), [['x', `N,3,${SIZE},${SIZE}`], ['t_emb', 'N,16'], ['y', `N,3,${SIZE},${SIZE}`]]);
  const g = new Graph();
  const inputs = Object.fromEntries(net.inputs.map((i) => [i.name, g.input(i.name, i.shape)]));
  const [v] = net.build(g, inputs, (p) => g.constant(net.weights.get(p.name)!.data, p.shape, 'float32', `param.${p.name}`));
  g.output('v', v!);
  const session = await GraphSession.create(serialize(g));
  const dims = (n: string) => (n === 't_emb' ? [2, 16] : [2, 3, SIZE, SIZE]);
  const got = (await session.run(Object.fromEntries(Object.entries(meta.inputs).map(([n, d]) => [n, { data: Float32Array.from(d), dims: dims(n) }])))).v!.data;
  await session.release();
  const scale = meta.output.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  const err = meta.output.reduce((m, x, i) => Math.max(m, Math.abs(x - got[i]!)), 0);
  assert.ok(err <= 1e-4 * scale, `differs from PyTorch by ${err} (scale ${scale})`);
  // recovery-grpo import --extra-input t_emb --extra-input y: the condition input takes the image's size
  const report = await importReport(ONNX, { height: SIZE, width: SIZE, extraInputs: ['t_emb', 'y'] });
  assert.ok(reportPassed(report), JSON.stringify({ contract: report.contract, forward: report.forward, gradient: report.gradient, error: report.error }));
});

test('config: the flow family needs the time and condition inputs named; adapters and a gaussian time input are refused', () => {
  assert.throws(() => parseConfig({ model: { family: 'flow', network: { onnx: ONNX, condition: 'y' } } }), (e: Error) => e instanceof ConfigError && /model\.network\.time: the flow family needs model\.network\.time/.test(e.message));
  assert.throws(() => parseConfig({ model: { family: 'flow', network: { onnx: ONNX, time: 't_emb', condition: 'y' }, adapter: { kind: 'lora' } } }), /model\.adapter: adapters on a flow velocity network are not supported/);
  assert.throws(() => parseConfig({ model: { network: { onnx: ONNX, time: 't_emb' } } }), /model\.network\.time: only the flow family/);
  // a time input named that the graph does not have is refused naming the file
  assert.throws(() => paramShapesOf(flowConfig({ network: { onnx: ONNX, time: 'tau', condition: 'y' } })), /velocity-net\.onnx: contract: input 't_emb' \[N,16\] is neither the image nor named as an extra input/);
  const c = flowConfig();
  const shapes = paramShapesOf(c);
  assert.ok(shapes.has('stem.weight') && shapes.has('time.0.weight') && shapes.has('head.bias'), [...shapes.keys()].join(', '));
  assert.ok(!shapes.has('log_std'));
});

test('imported velocity network: the learner recomputes the rollout\'s log-probs (first on-policy ratios within 1e-6 of 1)', async () => {
  const { batch, out } = await firstFlowPass(flowConfig());
  for (const r of out.ratio.data) assert.ok(Math.abs(r - 1) <= 1e-6, `ratio ${r}`);
  out.logp.data.forEach((lp, k) => assert.ok(Math.abs(lp - batch.flow!.logpOld[k]!) < 1e-6, `row ${k}: learner ${lp}, rollout ${batch.flow!.logpOld[k]}`));
});

test('imported velocity network: the single-process loop trains it (SFT, Flow-GRPO); the standalone ODE export equals the evaluation', async () => {
  const c = flowConfig();
  const start = initialParamsOf(c);
  const r = await runSingleProcess(c);
  assert.equal(r.checkpoint.meta.version, 4);
  assert.equal(r.checkpoint.meta.extra?.base_digest, sha256Hex(readFileSync(ONNX)));
  assert.deepEqual([...r.params.keys()].sort(), [...paramShapesOf(c).keys()].sort());
  const moved = [...r.params].filter(([n, t]) => t.data.some((x, i) => x !== start.get(n)!.data[i])).length;
  assert.ok(moved >= r.params.size - 1, `only ${moved} of ${r.params.size} tensors moved`);
  assert.ok(r.rewards.every(Number.isFinite));

  const pix = 3 * SIZE * SIZE;
  const image = Float32Array.from({ length: 2 * pix }, (_, i) => (i % 11) / 11);
  const runner = await FlowRunner.create(c);
  const ids = ['a', 'b'];
  const evaluated = await runner.evaluate(r.params, image, ids);
  const noise = new Float32Array(2 * pix);
  ids.forEach((id, i) => noise.set(startNoise(flowNoiseSeed(c.run.seed, `eval:${id}`, 0), pix), i * pix));
  const session = await GraphSession.create(standalonePolicyModel(c, r.params));
  const out = await session.run({ image: { data: image, dims: [2, 3, SIZE, SIZE] }, noise: { data: noise, dims: [2, 3, SIZE, SIZE] } });
  const worst = out.restored!.data.reduce((m, v, i) => Math.max(m, Math.abs(v - evaluated[i]!)), 0);
  assert.ok(worst < 1e-5, `standalone vs evaluate: max |diff| ${worst}`);
  await session.release();
  await runner.release();
});
