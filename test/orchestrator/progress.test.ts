// The progress line of an acknowledged batch is labelled with that batch's phase: the last SFT batch's
// acknowledgement comes when the run is already in GRPO, and was labelled [grpo] (review24c).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics } from '../../lib/metrics/index.ts';
import { formatProgress, ProgressMeter } from '../../orchestrator/progress.ts';

test("a batch's progress line carries its own phase, not the run's phase at report time", () => {
  const meter = new ProgressMeter(createMetrics('progress-test', 'orchestrator'), 4, 3);
  meter.started('sft');
  // batch 2, the last SFT batch: acknowledged once the run has moved on to GRPO
  assert.match(formatProgress(meter.acknowledged('grpo', 2, 'sft', 2, 0)), /^\[sft\] batch 2\/3 /);
  meter.started('grpo');
  assert.match(formatProgress(meter.acknowledged('done', 3, 'grpo', 3, 8)), /^\[grpo\] batch 3\/3 /);
  assert.equal(meter.acknowledged('done', 3, 'grpo', 3, 8).phase, 'done');
});
