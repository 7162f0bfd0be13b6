import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cosineLearningRate, sftLearningRate } from '../../lib/optim/schedule.ts';

test('SFT cosine schedule: lr at the first step, lr/10 at the last, the midpoint halfway; constant stays', () => {
  const sft = { lr: 1e-3, steps: 101, schedule: 'cosine' as const };
  assert.equal(sftLearningRate(sft, 1), 1e-3);
  assert.ok(Math.abs(sftLearningRate(sft, 101) - 1e-4) < 1e-12);
  assert.ok(Math.abs(sftLearningRate(sft, 51) - 0.55e-3) < 1e-12);
  for (let s = 2; s <= 101; s++) assert.ok(sftLearningRate(sft, s) < sftLearningRate(sft, s - 1), 'decreasing');
  assert.equal(sftLearningRate({ ...sft, schedule: 'constant' }, 77), 1e-3);
});

test('cosine by progress: lr at 0, lr/10 at 1 and beyond, the midpoint halfway', () => {
  assert.equal(cosineLearningRate(1e-3, 0), 1e-3);
  assert.ok(Math.abs(cosineLearningRate(1e-3, 1) - 1e-4) < 1e-12);
  assert.ok(Math.abs(cosineLearningRate(1e-3, 1.7) - 1e-4) < 1e-12);
  assert.ok(Math.abs(cosineLearningRate(1e-3, 0.5) - 0.55e-3) < 1e-12);
});
