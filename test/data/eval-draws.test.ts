// eval.draws every-type: each evaluation image once per type of the mix, levels drawn from (seed, image, type);
// a pure function of those, with the corruption itself reproducible from the draw's seed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CORRUPTION_TYPES, corrupt, LEVELS } from '../../lib/data/corruptions.ts';
import { openDataset } from '../../lib/data/dataset.ts';
import { everyTypeDraws, mixTypes } from '../../lib/data/eval-draws.ts';
import { configEvalSamples, evalSamples, firstSamples, gridIndices, imageCount } from '../../lib/eval/evaluate.ts';
import { loadConfig } from '../../lib/config/index.ts';
import { openRunDataset } from '../../lib/config/dataset.ts';
import { scene, tempDir, writeFixture } from './helpers.ts';

const quiet = { warn: () => {} };

test('everyTypeDraws: one draw per type of the mix, levels from the mix, a pure function of (seed, image, type)', () => {
  const all = everyTypeDraws({}, 3, 'photo-a');
  assert.deepEqual(all.map((d) => d.type), [...CORRUPTION_TYPES]);
  const levels = new Set<number>(Object.values(LEVELS));
  for (const d of all) assert.ok(levels.has(d.level), `${d.type}: level ${d.level} is not one of the mix's`);
  assert.deepEqual(everyTypeDraws({}, 3, 'photo-a'), all); // same inputs, same draws
  // Each (type) draw depends on its own (seed, image, type) only: a sub-mix gives the same draws for its types.
  const sub = everyTypeDraws({ types: { motion_blur: 2, gaussian_noise: 1, lens_blur: 0 } }, 3, 'photo-a');
  assert.deepEqual(sub.map((d) => d.type), CORRUPTION_TYPES.filter((t) => t === 'gaussian_noise' || t === 'motion_blur'));
  for (const d of sub) assert.deepEqual(d, all.find((a) => a.type === d.type));
  // Another seed or image draws otherwise (the corruption seeds always, levels somewhere).
  for (const other of [everyTypeDraws({}, 4, 'photo-a'), everyTypeDraws({}, 3, 'photo-b')]) {
    assert.ok(other.every((d, k) => d.seed !== all[k]!.seed));
  }
  // Numeric level lists and ranges.
  assert.ok(everyTypeDraws({ levels: [0.1, 0.7] }, 0, 'x').every((d) => d.level === 0.1 || d.level === 0.7));
  assert.ok(everyTypeDraws({ levels: { min: 0.2, max: 0.3 } }, 0, 'x').every((d) => d.level >= 0.2 && d.level <= 0.3));
  assert.deepEqual(mixTypes({ families: { post_processing: 1 } }), ['sharpness_change', 'graffiti', 'watermark_damage']);
});

test('everyTypeDraws: levels are balanced over images (each of three within 28-39% over 200 images x 16 types)', () => {
  const n = new Map<number, number>();
  for (let i = 0; i < 200; i++) for (const d of everyTypeDraws({}, 0, `img-${i}`)) n.set(d.level, (n.get(d.level) ?? 0) + 1);
  assert.equal(n.size, 3);
  for (const [level, k] of n) assert.ok(k / 3200 > 0.28 && k / 3200 < 0.39, `level ${level}: ${k} of 3200`);
});

test('dataset getEveryType / evalSamples: every type once per image, the corruption reproducible from the draw', async () => {
  const spec = { kind: 'procedural' as const, count: 40, size: 16 };
  const mix = { types: { gaussian_noise: 1, motion_blur: 1, jpeg_compression: 1 } };
  const ds = await openDataset(spec, { split: 'eval', evalFraction: 0.5, seed: 5, mix });
  const samples = await evalSamples(ds, 3, 'every-type');
  assert.equal(samples.length, 9);
  assert.equal(imageCount(samples), 3);
  for (let k = 0; k < 3; k++) {
    const group = samples.slice(3 * k, 3 * k + 3);
    assert.ok(group.every((s) => s.id === ds.id(k) && s.index === k && s.split === 'eval'));
    assert.deepEqual(group.map((s) => s.corruption.type), mixTypes(mix));
    assert.equal(new Set(group.map((s) => s.corruption.type)).size, 3);
    const draws = everyTypeDraws(mix, 5, ds.id(k));
    for (const [j, s] of group.entries()) {
      assert.equal(s.corruption.level, draws[j]!.level);
      // Independent reference: the clean image corrupted directly with the draw's type, level and seed.
      const want = await corrupt(s.clean, draws[j]!.type, draws[j]!.level, draws[j]!.seed, { refSize: 256 });
      assert.deepEqual(s.corrupted.data, want.data);
    }
  }
  // Reopened, the same samples byte for byte; 'one' is the first images' epoch-0 draws, as before.
  const again = await evalSamples(await openDataset(spec, { split: 'eval', evalFraction: 0.5, seed: 5, mix }), 3, 'every-type');
  assert.deepEqual(again.map((s) => s.corrupted.data), samples.map((s) => s.corrupted.data));
  const one = await evalSamples(ds, 3, 'one');
  assert.deepEqual(one.map((s) => [s.id, s.corruption]), (await firstSamples(ds, 3)).map((s) => [s.id, s.corruption]));
  // The grid shows distinct images, cycling through their draws.
  assert.deepEqual(gridIndices(samples, 2), [0, 4]);
  assert.deepEqual(gridIndices(one, 2), [0, 1]);
});

test('getEveryType: a manifest pair with its own corrupted image is one sample', async (t) => {
  const dir = tempDir(t);
  await writeFixture(dir, 'c1.png', scene(1, 20, 20));
  await writeFixture(dir, 'k1.png', scene(2, 20, 20));
  await writeFixture(dir, 'c2.png', scene(3, 20, 20));
  const path = join(dir, 'pairs.jsonl');
  writeFileSync(path, `${JSON.stringify({ id: 'a', clean: 'c1.png', corrupted: 'k1.png' })}\n${JSON.stringify({ id: 'b', clean: 'c2.png' })}\n`);
  const ds = await openDataset({ kind: 'manifest', path, size: 12 }, { ...quiet, mix: { types: { lens_blur: 1, mean_shift: 1 } } });
  assert.equal((await ds.getEveryType(0))!.length, 1);
  assert.deepEqual((await ds.getEveryType(1))!.map((s) => s.corruption.type), ['lens_blur', 'mean_shift']);
});

test('configEvalSamples: the config\'s eval.samples and eval.draws (or the caller\'s), the same samples in the same order as evalSamples', async () => {
  const config = loadConfig(undefined, ['data.source.kind=procedural', 'data.size=16', 'data.source.count=40', 'eval.samples=3', 'eval.draws=every-type']);
  const ids = (xs: Awaited<ReturnType<typeof evalSamples>>) => xs.map((x) => `${x.id}/${x.corruption.type}/${x.corruption.level}`);
  const ds = await openRunDataset(config, 'eval');
  const every = await configEvalSamples(config);
  assert.equal(imageCount(every), 3);
  assert.ok(every.length > 3, 'every-type: several draws per image');
  assert.deepEqual(ids(every), ids(await evalSamples(ds, 3, 'every-type')));
  assert.deepEqual(every.map((x) => [...x.corrupted.data.slice(0, 8)]), (await evalSamples(ds, 3, 'every-type')).map((x) => [...x.corrupted.data.slice(0, 8)]));
  assert.deepEqual(ids(await configEvalSamples(config, { count: 2, draws: 'one' })), ids(await evalSamples(ds, 2, 'one')));
});
