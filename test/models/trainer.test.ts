// Short runs through the real graphs: SFT lowers its loss; a GRPO step with positive advantage on an
// action raises that action's log-probability; a non-finite batch is never applied.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../lib/config/index.ts';
import { initPolicyParams } from '../../lib/models/policy.ts';
import { policySpecOf } from '../../lib/models/bundle.ts';
import { PolicyRunner } from '../../lib/models/runner.ts';
import { PolicyTrainer } from '../../lib/models/trainer.ts';
import { cloneTensorMap } from '../../lib/checkpoint/tensors.ts';
import { ssimMapSize } from '../../lib/models/ssim.ts';
import { testRandom } from '../graph/gradcheck.ts';

const config = loadConfig(undefined, ['data.size=16', 'model.width=8', 'model.depth=2', 'sft.lr=0.003', 'sft.loss=l2', 'model.logStd=-1', 'grpo.advantageMode=scalar']);
const N = 8;
const PIX = N * 3 * 16 * 16;

/** Smooth clean images (gradients) and noisy inputs. */
function batch(seed: number): { clean: Float32Array; noisy: Float32Array } {
  const rand = testRandom(seed);
  const clean = new Float32Array(PIX);
  for (let n = 0; n < N; n++) {
    const [a, b, c] = [rand(), rand(), rand()];
    for (let ch = 0; ch < 3; ch++) for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) clean[((n * 3 + ch) * 16 + y) * 16 + x] = (a * x + b * y) / 32 + c * ch * 0.2;
  }
  const noisy = clean.map((v) => v + (rand() - 0.5) * 0.4);
  return { clean, noisy };
}

test('a short SFT run lowers the loss', async () => {
  const params = initPolicyParams(policySpecOf(config), 0);
  const trainer = PolicyTrainer.create(config, params);
  const losses: number[] = [];
  for (let i = 0; i < 40; i++) {
    const { clean, noisy } = batch(i % 4);
    const { loss, step } = await trainer.sftStep(noisy, clean, N);
    assert.ok(step.applied);
    losses.push(loss);
  }
  const first = losses.slice(0, 4).reduce((a, b) => a + b) / 4;
  const last = losses.slice(-4).reduce((a, b) => a + b) / 4;
  assert.ok(last < 0.6 * first, `loss ${first.toFixed(5)} -> ${last.toFixed(5)}`);
  await trainer.release();
});

test('a GRPO step raises the advantage-weighted log-probability; NaN never reaches the weights', async () => {
  const params = initPolicyParams(policySpecOf(config), 1);
  const runner = await PolicyRunner.create(config);
  const rand = testRandom(5);
  const { noisy } = batch(9);
  const noise = Float32Array.from({ length: PIX }, () => rand() * 2 - 1);
  const roll = await runner.run(params, noisy, noise, N);
  const trainer = PolicyTrainer.create(loadConfig(undefined, ['data.size=16', 'model.width=8', 'model.depth=2', 'model.logStd=-1', 'optim.lr=0.0001', 'grpo.clipLow=0.5', 'grpo.clipHigh=0.5', 'grpo.advantageMode=scalar']), params);
  const advantages = Float32Array.from({ length: N }, (_, i) => (i % 2 ? 1 : -1));
  const inputs = { n: N, images: noisy, actions: roll.action, logpOld: roll.logp, advantages, refMean: roll.mean };
  const r = await trainer.grpoStep(inputs);
  assert.ok(r.step.applied);
  const after = await runner.run(params, noisy, noise, N);
  const newLogp = (await trainer.grpoForward(inputs)).logp.data;
  // First order, a small step raises sum_i A_i logp_i: likelier positive-advantage actions, rarer negative ones.
  let weighted = 0;
  for (let i = 0; i < N; i++) weighted += advantages[i] * (newLogp[i] - roll.logp[i]);
  assert.ok(weighted > 0, `sum_i A_i (logp_new - logp_old) = ${weighted}`);
  assert.notDeepEqual(after.mean, roll.mean);

  const before = cloneTensorMap(params);
  const bad = await trainer.grpoStep({ ...inputs, advantages: advantages.map((a, i) => (i === 3 ? NaN : a)) });
  assert.equal(bad.step.applied, false);
  assert.match((bad.step as { reason: string }).reason, /non-finite/);
  assert.deepEqual(params, before, 'parameters untouched by a non-finite step');
  await runner.release();
  await trainer.release();
});

// A NaN activation must never reach the parameters: the loss is a forward output, so it is enough that a NaN
// activation makes the loss NaN and the trainer refuses a non-finite loss (a gradient rule that differs only where an
// activation is NaN, like round 22's Ceil slope, then cannot change a checkpoint: docs/performance-history/grpo-step.md, "Round 22: grpo22").
test('a NaN activation (from the image or a parameter) makes the GRPO loss NaN and the step is never applied (resnet, unet)', async () => {
  const rand = testRandom(11);
  const { noisy } = batch(3);
  const actions = noisy.map((v) => v + (rand() - 0.5) * 0.1);
  const m = ssimMapSize(16);
  for (const [arch, mode] of [['resnet', 'scalar'], ['resnet', 'dense'], ['unet', 'dense']] as const) {
    const cfg = loadConfig(undefined, ['data.size=16', `model.arch=${arch}`, 'model.width=8', 'model.depth=2', 'model.logStd=-1', 'optim.lr=0.0001', `grpo.advantageMode=${mode}`]);
    const params = initPolicyParams(policySpecOf(cfg), 2);
    const trainer = PolicyTrainer.create(cfg, params);
    const inputs = {
      n: N, images: noisy, actions, refMean: noisy,
      logpOld: new Float32Array(mode === 'dense' ? PIX : N).fill(-1),
      advantages: Float32Array.from({ length: N }, (_, i) => (i % 2 ? 1 : -1)),
      advantageMap: mode === 'dense' ? Float32Array.from({ length: N * 3 * m * m }, () => rand() - 0.5) : undefined,
    };
    assert.ok((await trainer.grpoStep(inputs)).step.applied, `${arch} ${mode}: the finite batch is applied`);
    const [first, hidden] = arch === 'resnet' ? ['stem', 'block0.conv1'] : ['enc0', 'enc1'];
    const cases: Array<[string, () => () => void]> = [
      ['a NaN pixel', () => { const i = inputs.images; inputs.images = i.map((v, k) => (k === 5 * 256 + 7 * 16 + 9 ? NaN : v)); return () => { inputs.images = i; }; }],
      ['a NaN hidden bias', () => { const b = params.get(`${hidden}.bias`)!.data; const v = b[1]!; b[1] = NaN; return () => { b[1] = v; }; }],
      ['an infinite first-layer weight (inf * 0 at the padding)', () => { const w = params.get(`${first}.weight`)!.data; const v = w[4]!; w[4] = Infinity; return () => { w[4] = v; }; }],
    ];
    for (const [what, inject] of cases) {
      const undo = inject();
      const before = cloneTensorMap(params);
      const state = trainer.optimizer.exportState();
      const out = await trainer.grpoForward(inputs);
      assert.ok(Number.isNaN(out.loss!.data[0]), `${arch} ${mode}, ${what}: loss ${out.loss!.data[0]}`);
      assert.ok(Object.keys(out).some((k) => k.startsWith('grad.') && out[k]!.data.some((v) => !Number.isFinite(v))), `${arch} ${mode}, ${what}: a gradient is non-finite too`);
      const r = await trainer.grpoStep(inputs);
      assert.equal(r.step.applied, false, `${arch} ${mode}, ${what}`);
      assert.match((r.step as { reason: string }).reason, /^non-finite loss NaN/);
      assert.deepEqual(params, before, `${arch} ${mode}, ${what}: parameters untouched`);
      assert.deepEqual(trainer.optimizer.exportState(), state, `${arch} ${mode}, ${what}: AdamW's moments and step count untouched`);
      undo();
    }
    await trainer.release();
  }
});
