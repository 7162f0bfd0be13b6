// scripts/experiment.ts reproduces docs/experiment.md's measured configuration whatever the schema's defaults are
// now (review35 F1: after the defaults moved to the photographs, l1, 3e-4 and every-type draws, the documented
// command ran another experiment).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../lib/config/load.ts';
import { EXPERIMENT_OVERRIDES } from '../../scripts/experiment.ts';

test('the experiment pins the settings its results were measured with (3f78426), not the current defaults', () => {
  const c = loadConfig(undefined, EXPERIMENT_OVERRIDES);
  assert.equal(c.data.source.kind, 'procedural');
  assert.equal(c.data.source.count, 2048);
  assert.equal(c.sft.loss, 'l2');
  assert.equal(c.sft.lr, 1e-3);
  assert.equal(c.sft.schedule, 'cosine');
  assert.equal(c.eval.draws, 'one');
  assert.equal(c.eval.samples, 256);
  assert.equal(c.grpo.advantageMode, 'dense');
});
