// The demo's defaults (lib/local/demo-defaults.ts) load as the run configuration the demo and scripts/demo-probe.ts
// use, with the round-9 choice (docs/data-history.md "Round 9: grpo9"): 600 GRPO steps whose published policy is the GRPO
// weights' moving average with sft.ema's warm-up; the flow demo turns the average off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../lib/config/index.ts';
import { DEMO_GRPO_STEPS, DEMO_OVERRIDES, DEMO_SFT_STEPS } from '../../lib/local/demo-defaults.ts';
import { FLOW_DEMO_OVERRIDES } from '../../lib/flow/demo.ts';
import { lastGrpoSeq } from '../../lib/grpo/weight-average.ts';

test('demo defaults: the round-9 GRPO weight average over 600 steps, after a 400-step psnr warm start', () => {
  const c = loadConfig(undefined, [...DEMO_OVERRIDES, `sft.steps=${DEMO_SFT_STEPS}`, `grpo.steps=${DEMO_GRPO_STEPS}`]);
  assert.deepEqual([c.sft.steps, c.grpo.steps, c.grpo.beta, c.sft.loss], [400, 600, 0.05, 'psnr']);
  assert.deepEqual([c.grpo.ema, c.grpo.emaWarmup], [0.999, true]);
  assert.equal(lastGrpoSeq(c), 1000, 'the version that publishes the average');
  // the schema's own default keeps the average off
  assert.equal(loadConfig(undefined, []).grpo.ema, 0);
});

test('demo defaults: the flow demo (its overrides after the Gaussian ones) keeps the average off', () => {
  const c = loadConfig(undefined, [...DEMO_OVERRIDES, ...FLOW_DEMO_OVERRIDES, 'model.family=flow']);
  assert.equal(c.grpo.ema, 0);
});
