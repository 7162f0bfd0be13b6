// Round 28 (lcpu28): grpoUpdate's KL reference forward fetches only the policy graph's mean (PolicyRunner.mean)
// instead of every output (run(), of which it read the mean). The step must be the old one bit for bit: the same
// reference mean, loss, kl, clip fraction, per-row logp and ratio, and the same parameters and AdamW moments after
// it, in both advantage modes, with groups whose rows share an image (the runner computes one per distinct image),
// and with reference parameters that differ from the trained ones (so the KL term is not zero).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, type RunConfig } from '../../lib/config/index.ts';
import { initPolicyParams } from '../../lib/models/policy.ts';
import { policySpecOf } from '../../lib/models/bundle.ts';
import { PolicyRunner } from '../../lib/models/runner.ts';
import { PolicyTrainer, type GrpoInputs, type GrpoStepResult } from '../../lib/models/trainer.ts';
import { cloneTensorMap, type TensorMap } from '../../lib/checkpoint/tensors.ts';
import { grpoHyper } from '../../lib/grpo/algorithm.ts';
import { grpoUpdate } from '../../lib/grpo/update.ts';
import { ssimMapSize } from '../../lib/models/ssim.ts';
import { testRandom } from '../graph/gradcheck.ts';

const S = 16;
const G = 4;
const N = 12; // three groups of G rows sharing an image
const P = 3 * S * S;
const settings = (mode: 'scalar' | 'dense') => [`data.size=${S}`, 'model.width=8', 'model.depth=2', 'model.logStd=-1', 'optim.lr=0.001', `grpo.advantageMode=${mode}`, 'grpo.beta=0.05', `grpo.groupSize=${G}`];

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

async function fixture(config: RunConfig) {
  const rand = testRandom(11);
  const images = new Float32Array(N * P);
  for (let g = 0; g < N / G; g++) {
    const img = Float32Array.from({ length: P }, () => 0.2 + 0.6 * rand());
    for (let k = 0; k < G; k++) images.set(img, (g * G + k) * P);
  }
  const noise = Float32Array.from({ length: N * P }, () => rand() * 2 - 1);
  const reference = initPolicyParams(policySpecOf(config), 1);
  // the trained parameters: the reference moved a little, so the reference mean differs from the policy's
  const params = cloneTensorMap(reference);
  for (const [name, t] of params) if (name !== 'log_std') for (let i = 0; i < t.data.length; i++) t.data[i] = t.data[i]! + 0.02 * (rand() - 0.5);
  const runner = await PolicyRunner.create(config);
  const roll = await runner.run(params, images, noise, N);
  await runner.release();
  const dense = config.grpo.advantageMode === 'dense';
  const h = ssimMapSize(S);
  const batch: Omit<GrpoInputs, 'refMean'> = {
    n: N, images, actions: roll.action, logpOld: dense ? roll.logpMap : roll.logp,
    advantages: Float32Array.from({ length: N }, (_, i) => (i % 3) - 1),
    ...(dense ? { advantageMap: Float32Array.from({ length: N * 3 * h * h }, () => 0.1 * (rand() - 0.5)) } : {}),
  };
  return { batch, reference, params };
}

/** Round 27's grpoUpdate at beta > 0, written out: every output of the reference forward fetched, its mean read. */
async function oldUpdate(trainer: PolicyTrainer, runner: PolicyRunner, reference: TensorMap, batch: Omit<GrpoInputs, 'refMean'>, config: RunConfig): Promise<{ r: GrpoStepResult; refMean: Float32Array }> {
  const refMean = (await runner.run(reference, batch.images, new Float32Array(batch.images.length), batch.n)).mean;
  return { r: await trainer.grpoStep({ ...batch, refMean }, grpoHyper(config)), refMean };
}

for (const mode of ['scalar', 'dense'] as const) {
  test(`grpoUpdate (${mode}): the reference forward's mean alone gives round 27's step bit for bit`, async () => {
    const config = loadConfig(undefined, settings(mode));
    const { batch, reference, params } = await fixture(config);
    const runner = await PolicyRunner.create(config);
    try {
      // the mean alone is run()'s mean, byte for byte
      const full = (await runner.run(reference, batch.images, new Float32Array(batch.images.length), N)).mean;
      assert.ok(bits(await runner.mean(reference, batch.images, N)).equals(bits(full)), 'PolicyRunner.mean differs from run().mean');
      // two trainers from the same parameters: the old computation and grpoUpdate
      const oldParams = cloneTensorMap(params);
      const newParams = cloneTensorMap(params);
      const oldTrainer = PolicyTrainer.create(config, oldParams);
      const newTrainer = PolicyTrainer.create(config, newParams);
      try {
        for (let step = 0; step < 2; step++) {
          const { r: a, refMean } = await oldUpdate(oldTrainer, runner, reference, batch, config);
          const b = await grpoUpdate(newTrainer, { params: reference, runner: async () => runner }, batch, grpoHyper(config));
          assert.ok(a.step.applied && b.step.applied, 'both steps applied');
          assert.notEqual(a.kl, 0, 'the reference differs from the policy: kl is not zero');
          assert.ok(bits(refMean).equals(bits(full)), 'the old arm reads the full forward\'s mean');
          assert.ok(Object.is(a.loss, b.loss), `loss ${a.loss} vs ${b.loss}`);
          assert.ok(Object.is(a.kl, b.kl), `kl ${a.kl} vs ${b.kl}`);
          assert.ok(Object.is(a.clipFraction, b.clipFraction), `clip fraction ${a.clipFraction} vs ${b.clipFraction}`);
          assert.ok(Object.is(a.step.gradNorm, b.step.gradNorm), `grad norm ${a.step.gradNorm} vs ${b.step.gradNorm}`);
          assert.ok(bits(a.logp).equals(bits(b.logp)), 'logp');
          assert.ok(bits(a.ratio).equals(bits(b.ratio)), 'ratio');
          for (const [name, t] of oldParams) assert.ok(bits(t.data).equals(bits(newParams.get(name)!.data)), `parameter ${name} after step ${step + 1}`);
          const mo = oldTrainer.optimizer.exportState();
          const mn = newTrainer.optimizer.exportState();
          assert.deepEqual(mn, mo, `AdamW state after step ${step + 1}`);
        }
      } finally {
        await oldTrainer.release();
        await newTrainer.release();
      }
    } finally {
      await runner.release();
    }
  });
}
