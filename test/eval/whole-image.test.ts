// Evaluation on whole images of several sizes (photographs keep their aspect): one policy graph per size, the
// same scores as evaluating each image alone, and grids whose cells are at least 128 px.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { loadConfig } from '../../lib/config/index.ts';
import { corrupt } from '../../lib/data/corruptions.ts';
import type { Sample } from '../../lib/data/dataset.ts';
import { renderScene } from '../../lib/data/procedural.ts';
import { evaluate, outputImage } from '../../lib/eval/evaluate.ts';
import { gridScale, MIN_GRID_CELL, renderGrid } from '../../lib/eval/grid.ts';
import { policySpecOf } from '../../lib/models/bundle.ts';
import { initPolicyParams } from '../../lib/models/policy.ts';

const config = loadConfig(undefined, ['data.source.kind=procedural', 'data.size=16', 'model.width=4', 'model.depth=1']);

async function sample(k: number, width: number, height: number): Promise<Sample> {
  const clean = renderScene(k, width, height);
  const corrupted = await corrupt(clean, 'gaussian_noise', 0.45, k);
  return { id: `s${k}`, index: k, split: 'eval', clean, corrupted, corruption: { type: 'gaussian_noise', level: 0.45 } };
}

test('evaluate: samples of different sizes score as each evaluated alone', { timeout: 120_000 }, async () => {
  const params = initPolicyParams(policySpecOf(config), 3);
  // A non-zero head, so the policy is not the identity.
  for (const [name, t] of params) if (name.startsWith('head.')) t.data.forEach((_, i) => { t.data[i] = 0.05 * Math.sin(i + 1); });
  const samples = [await sample(1, 24, 16), await sample(2, 16, 16), await sample(3, 24, 16), await sample(4, 16, 32)];
  const policies = { identity: { kind: 'identity' as const }, policy: { kind: 'mean' as const, params } };
  const all = await evaluate(config, samples, policies);
  assert.equal(all.reports.policy.count, 4);
  let sum = 0;
  for (const [i, s] of samples.entries()) {
    const alone = await evaluate(config, [s], policies);
    assert.deepEqual(outputImage(all, 'policy', i), outputImage(alone, 'policy', 0));
    assert.deepEqual(outputImage(all, 'identity', i).data, s.corrupted.data);
    sum += alone.reports.policy.reward;
  }
  assert.ok(Math.abs(all.reports.policy.reward - sum / 4) < 1e-9);
  assert.notDeepEqual(outputImage(all, 'policy', 0).data, samples[0].corrupted.data);
});

test('renderGrid: rows of different sizes, every cell at least 128 px on its shorter side', () => {
  const a = renderScene(1, 40, 24);
  const b = renderScene(2, 24, 48);
  assert.equal(gridScale([a, b]), Math.ceil(MIN_GRID_CELL / 24));
  const grid = renderGrid(['x', 'y'], [{ label: 'wide', images: [a, a] }, { label: 'tall', images: [b, b] }]);
  const k = Math.ceil(128 / 24);
  assert.ok(24 * k >= 128);
  // Two rows of heights 24k and 48k plus header and gaps.
  assert.equal(grid.height, 18 + 24 * k + 4 + 48 * k + 4 + 4);
  assert.throws(() => renderGrid(['x', 'y'], [{ label: 'bad', images: [a, b] }]), /mixes image sizes/);
});
