// The single-process Flow-GRPO loop end to end at the smallest size: the rectified-flow loss falls during
// SFT, GRPO steps run on-policy (nothing clipped) with finite rewards and a growing drift from the warm
// start, and the evaluation SSIMs are proper SSIMs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../lib/config/index.ts';
import { runFlowLoop } from '../../lib/flow/train-loop.ts';

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
