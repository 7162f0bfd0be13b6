// An imported network trains through the pipeline (issue #14): the project's U-Net exported to ONNX and
// re-imported as model.network, SFT then GRPO, full fine-tuning and LoRA, through the single-process loop
// (the pipeline's specification). The distributed pipeline runs a network PyTorch exported
// (test/import/pytorch.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { loadConfig, ConfigError } from '../../lib/config/index.ts';
import { runSingleProcess } from '../../lib/local/single-process.ts';
import { decodeCheckpoint, encodeCheckpoint, sha256Hex, type TensorMap } from '../../lib/checkpoint/index.ts';
import { paramShapes, policySpecOf, standalonePolicyModel } from '../../lib/models/bundle.ts';
import { initPolicyParams } from '../../lib/models/policy.ts';
import { importedPolicy } from '../../lib/models/imported-policy.ts';
import { PolicyRunner } from '../../lib/models/runner.ts';
import { GraphSession } from '../../lib/graph/runtime.ts';
import { testRandom } from '../../lib/graph/gradcheck.ts';
import { checkBaseDigest } from '../../lib/worker/checkpoints.ts';
import { projectUnetOnnx } from './models.ts';

const SIZE = 16;
const dir = mkdtempSync(join(tmpdir(), 'import-pipeline-'));
const onnxPath = join(dir, 'unet.onnx');
writeFileSync(onnxPath, projectUnetOnnx(SIZE).bytes);
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const TINY = [
  `data.size=${SIZE}`, 'data.source.kind=procedural', 'data.source.count=32', 'sft.batchSize=2', 'grpo.groupSize=3', 'grpo.samplesPerBatch=2',
  'grpo.maxStaleness=0', 'grpo.advantageMode=scalar', 'eval.samples=2', 'eval.everyVersions=0', 'sft.lr=3e-3', 'optim.lr=1e-3',
  'orchestrator.leaseSeconds=30', 'orchestrator.heartbeatSeconds=1', `model.network.onnx=${onnxPath}`,
];
const LORA = ['model.adapter.kind=lora', 'model.adapter.rank=2', 'model.adapter.alpha=4'];

const configOf = (extra: string[], steps: { sft: number; grpo: number }) =>
  loadConfig(undefined, [...TINY, ...extra, `sft.steps=${steps.sft}`, `grpo.steps=${steps.grpo}`, 'run.id=imported']);

const numel = (m: TensorMap) => [...m.values()].reduce((s, t) => s + t.data.length, 0);
const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

test('config: model.network and model.adapter are checked at load, errors name the field and the file', () => {
  assert.throws(() => loadConfig(undefined, ['model.network.onnx=/nonexistent/net.onnx']), (e: Error) => e instanceof ConfigError && /model\.network\.onnx: ONNX file "\/nonexistent\/net\.onnx" is not a readable file/.test(e.message));
  assert.throws(() => loadConfig(undefined, ['model.adapter.kind=lora']), /model\.adapter: needs model\.network/);
  assert.throws(() => loadConfig(undefined, [`model.network.onnx=${onnxPath}`, 'model.adapter.kind=lora', 'model.adapter.rank=0']), /model\.adapter\.rank/);
  assert.throws(() => loadConfig(undefined, [`model.network.onnx=${onnxPath}`, 'model.network.extra=1']), /model\.network/);
  // contents are checked when the policy is built: a target that matches nothing names the file
  const c = loadConfig(undefined, [...TINY, ...LORA, 'model.adapter.targets=["nothing*"]']);
  assert.throws(() => paramShapes(policySpecOf(c)), new RegExp(`model\\.adapter \\(${onnxPath.replace(/[.]/g, '\\.')}\\): lora: target 'nothing\\*' matches none`));
});

test('parameters: full fine-tuning trains every base tensor; LoRA only the factors, the base frozen', () => {
  const full = paramShapes(policySpecOf(configOf([], { sft: 0, grpo: 0 })));
  const lora = paramShapes(policySpecOf(configOf(LORA, { sft: 0, grpo: 0 })));
  const ip = importedPolicy(policySpecOf(configOf(LORA, { sft: 0, grpo: 0 })).network!, policySpecOf(configOf(LORA, { sft: 0, grpo: 0 })).adapter);
  assert.ok([...full.keys()].some((n) => n.endsWith('head.weight')), [...full.keys()].join(', '));
  assert.ok([...lora.keys()].every((n) => /\.lora_[AB]$/.test(n) || n === 'log_std'), [...lora.keys()].join(', '));
  assert.equal(ip.adapters.length, ip.net.params.filter((p) => p.role === 'conv-weight').length);
  const fullN = [...full.values()].reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1), 0);
  const loraN = [...lora.values()].reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1), 0);
  assert.ok(loraN < fullN, `LoRA ${loraN} >= full ${fullN}`);
  // trainBiases adds the biases to what trains
  const withBiases = paramShapes(policySpecOf(configOf([...LORA, 'model.adapter.trainBiases=true'], { sft: 0, grpo: 0 })));
  assert.ok([...withBiases.keys()].some((n) => n.endsWith('.bias')));
});

for (const mode of ['full', 'lora'] as const) {
  test(`single-process loop: an imported U-Net (${mode}) trains, SFT then GRPO; the checkpoint carries only what trains and the base digest`, { timeout: 120_000 }, async () => {
    const config = configOf(mode === 'lora' ? LORA : [], { sft: 6, grpo: 3 });
    const spec = policySpecOf(config);
    const ip = importedPolicy(spec.network!, spec.adapter);
    const start = initPolicyParams(spec, config.run.seed);
    const r = await runSingleProcess(config, { params: initPolicyParams(spec, config.run.seed) });
    assert.equal(r.checkpoint.meta.version, 9);
    assert.equal(r.checkpoint.meta.extra?.base_digest, sha256Hex(readFileSync(onnxPath)));
    assert.deepEqual([...r.checkpoint.params.keys()].sort(), [...paramShapes(spec).keys()].sort());
    // every trainable tensor moved except log_std (fixed); with LoRA the frozen base is not in the checkpoint
    const moved = [...r.params].filter(([n, t]) => maxAbsDiff(t.data, start.get(n)!.data) > 0).map(([n]) => n);
    assert.ok(moved.length >= r.params.size - 1, `only ${moved.join(', ')} moved`);
    if (mode === 'lora') {
      assert.ok(numel(r.params) < 0.5 * ip.net.params.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0));
      assert.ok(![...r.params.keys()].some((n) => ip.frozen.some((f) => f.name === n)));
    }
    assert.equal(r.rewards.length, 3);
    assert.ok(r.rewards.every(Number.isFinite));
    // a checkpoint trained on another base is refused by name
    const { bytes } = encodeCheckpoint(r.checkpoint);
    const decoded = decodeCheckpoint(bytes);
    assert.throws(() => checkBaseDigest(decoded.meta.extra, 'f'.repeat(64), 'v9'), /v9: was trained on base sha256 [0-9a-f]{64}, but this role's model\.network files give base sha256 f{64}: every role must read the same base files; refusing the run/);
    assert.throws(() => checkBaseDigest(decoded.meta.extra, undefined, 'v9'), /no imported base/);

    // the standalone export (adapters merged into the base) computes the in-run policy's mean
    const runner = await PolicyRunner.create(config);
    const session = await GraphSession.create(standalonePolicyModel(config, r.params));
    const rand = testRandom(4);
    const n = 2;
    const images = Float32Array.from({ length: n * 3 * SIZE * SIZE }, () => rand());
    const noise = new Float32Array(images.length);
    const inRun = (await runner.run(r.params, images, noise, n)).mean;
    const dims = [n, 3, SIZE, SIZE];
    const standalone = (await session.run({ image: { data: images, dims }, noise: { data: noise, dims } })).mean.data;
    const scale = inRun.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    assert.ok(maxAbsDiff(inRun, standalone) <= 1e-5 * scale, `standalone differs by ${maxAbsDiff(inRun, standalone)}`);
    if (mode === 'lora') {
      // the trained adapters changed the policy (else the merge would be trivially equal to the base)
      const base = (await runner.run(initPolicyParams(spec, config.run.seed), images, noise, n)).mean;
      assert.ok(maxAbsDiff(base, inRun) > 1e-4, 'the adapters did not change the policy');
    }
    await runner.release();
    await session.release();
  });
}

test('KL reference with adapters: the policy GRPO starts from (the SFT end), so the first on-policy KL is 0', async () => {
  // Stage I trains the adapters, so "the base without them" would be the network before SFT: a KL that pulls
  // GRPO back towards undoing the warm start (round 22's review: kl ~78 at the first step, 70x the policy loss)
  for (const extra of [LORA, []]) {
    const config = configOf(extra, { sft: 4, grpo: 1 });
    assert.ok(config.grpo.beta > 0);
    const kls: number[] = [];
    const r = await runSingleProcess(config, { onStep: (s) => kls.push(s.kl) });
    if (extra.length) {
      const factorsB = [...r.sftParams.keys()].filter((n) => n.endsWith('lora_B'));
      assert.ok(factorsB.some((n) => r.sftParams.get(n)!.data.some((x) => x !== 0)), 'SFT did not move the adapters');
    }
    assert.equal(kls.length, 1);
    assert.equal(kls[0], 0, `${extra.length ? 'LoRA' : 'full fine-tuning'}: the first GRPO step's KL is ${kls[0]}, not 0`);
  }
});
