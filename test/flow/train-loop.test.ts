// The single-process Flow-GRPO loop end to end at the smallest size: the rectified-flow loss falls during
// SFT, GRPO steps run on-policy (nothing clipped) with finite rewards and a growing drift from the warm
// start, and the evaluation SSIMs are proper SSIMs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../lib/config/index.ts';
import { runFlowLoop } from '../../lib/flow/train-loop.ts';
import { openRunDataset } from '../../lib/config/dataset.ts';
import { stackPairs } from '../../lib/data/image.ts';
import { encodeState } from '../../lib/flow/rollout.ts';

test('flow loop: SFT lowers the rectified-flow loss, GRPO steps run on-policy, evaluation is an SSIM', async () => {
  const config = parseConfig({
    data: { size: 12, source: { kind: 'procedural', count: 32 } },
    grpo: { groupSize: 4, clipLow: 1e-4, clipHigh: 1e-4, beta: 0.01, advantageMode: 'dense' },
  });
  const result = await runFlowLoop(config, {
    model: { arch: 'resnet', width: 8, depth: 1, timeFrequencies: 4, timeWidth: 8 },
    sampler: { type: 'sde', steps: 4, a: 0.7, shift: 1, window: { size: 1, start: 'random' }, start: 'noise', startT: 1 },
    evalSteps: 4,
    evalStepsSweep: [2],
    evalItems: 4,
    sft: { steps: 40, batchSize: 8, lr: 3e-3 },
    grpo: { steps: 2, samplesPerBatch: 2, lr: 1e-3 },
  });
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const first = avg(result.sftLoss.slice(0, 10));
  const last = avg(result.sftLoss.slice(-10));
  assert.ok(last < 0.9 * first, `SFT loss ${first} -> ${last}`);
  assert.equal(result.grpo.length, 2);
  for (const s of result.grpo) {
    assert.ok(Number.isFinite(s.reward) && s.reward > -1 && s.reward <= 1, `reward ${s.reward}`);
    assert.equal(s.clipFraction, 0, 'one on-policy update per batch: ratios are 1, nothing clipped');
  }
  assert.ok(result.grpo[0].kl < 1e-10, `the first update starts at the warm start (kl ${result.grpo[0].kl})`);
  assert.ok(result.grpo[1].kl > 0, 'the second has moved away from it');
  for (const v of Object.values(result.evalSsim)) assert.ok(v > -1 && v <= 1, `eval SSIM ${v}`);
  assert.deepEqual(result.evalSweep.map((e) => e.sampler), ['ode 2 steps', 'training plan (sde, 4 steps, window 1)']);
  for (const e of result.evalSweep) assert.ok(e.afterSft > -1 && e.afterSft <= 1 && e.afterGrpo > -1 && e.afterGrpo <= 1);
});

test('flow loop: flow.space residual is followed (SFT target (clean - y) / scale, evaluation decoded as y + scale x); a model.space that disagrees is refused', async () => {
  const config = parseConfig({
    data: { size: 12, source: { kind: 'procedural', count: 16 } },
    flow: { space: 'residual', scale: 0.1 },
    grpo: { groupSize: 2, beta: 0 },
  });
  const B = 2;
  const settings = {
    model: { arch: 'resnet' as const, width: 4, depth: 1, timeFrequencies: 2, timeWidth: 4, predict: 'residual' as const, space: 'residual' as const },
    sampler: { type: 'sde' as const, steps: 4, a: 0.7, shift: 1, window: { size: 1, start: 0 }, start: 'noise' as const, startT: 1 },
    evalSteps: 3,
    evalItems: 2,
    // One SFT step at a vanishing rate: its loss is measured at the fresh network, which it barely moves.
    sft: { steps: 1, batchSize: B, lr: 1e-12 },
    grpo: { steps: 0, samplesPerBatch: 1, lr: 1e-3 },
  };
  const result = await runFlowLoop(config, settings);
  // A fresh residual network predicts x0_hat = 0 (the corrupted image): its SFT loss is mean(x0^2) with
  // x0 = (clean - corrupted) / scale of the loop's first batch, and its ODE samples the corrupted image.
  const train = await openRunDataset(config, 'train');
  const { clean, corrupted } = stackPairs([await train.sample(0), await train.sample(1)]);
  const x0 = encodeState({ kind: 'residual', scale: 0.1 }, clean, corrupted);
  const want = x0.reduce((a, v) => a + v * v, 0) / x0.length;
  assert.ok(Math.abs(result.sftLoss[0] / want - 1) < 1e-4, `SFT loss ${result.sftLoss[0]} vs mean(((clean - y) / scale)^2) = ${want}`);
  assert.ok(Math.abs(result.evalSsim.afterSft - result.evalSsim.corrupted) < 1e-5, `a fresh network samples the corrupted image: SSIM ${result.evalSsim.afterSft} vs ${result.evalSsim.corrupted}`);
  await assert.rejects(runFlowLoop(config, { ...settings, model: { ...settings.model, space: undefined } }), /model\.space \(image\) disagrees with flow\.space \(residual\)/);
});
