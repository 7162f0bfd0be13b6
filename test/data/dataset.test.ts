import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  dataConfigSchema, datasetSpecSchema, openDataConfig, openDataset, parseManifest, splitOf, type Sample,
} from '../../lib/data/dataset.ts';
import { CORRUPTION_TYPES } from '../../lib/data/corruptions.ts';
import { sameBytes, scene, tempDir, writeFixture } from './helpers.ts';

function checkSample(s: Sample, size: number): void {
  for (const img of [s.clean, s.corrupted]) {
    assert.equal(img.width, size);
    assert.equal(img.height, size);
    assert.ok(img.data instanceof Uint8Array);
    assert.equal(img.data.length, size * size * 3);
  }
  assert.ok(s.split === 'train' || s.split === 'eval');
}

const quiet = { warn: () => {} };

test('procedural: deterministic samples at the training resolution', async () => {
  const ds = await openDataset({ kind: 'procedural', count: 40, size: 32 }, { seed: 3 });
  assert.equal(ds.size, 40);
  assert.equal(ds.resolution, 32);
  const a = await ds.get(7);
  const b = await (await openDataset({ kind: 'procedural', count: 40, size: 32 }, { seed: 3 })).get(7);
  assert.ok(a && b);
  checkSample(a, 32);
  assert.equal(a.id, ds.id(7));
  assert.ok(sameBytes(a.clean, b.clean) && sameBytes(a.corrupted, b.corrupted));
  assert.deepEqual(a.corruption, b.corruption);
  assert.ok(CORRUPTION_TYPES.includes(a.corruption.type as never));
  assert.ok(!sameBytes(a.clean, a.corrupted));
  // Another run seed: same clean scene, other corruption draws.
  const other = await (await openDataset({ kind: 'procedural', count: 40, size: 32 }, { seed: 4 })).get(7);
  assert.ok(other && sameBytes(other.clean, a.clean));
  await assert.rejects(ds.get(40), /outside/);
});

test('splits: stable hash of the id, disjoint, covering', async () => {
  const spec = { kind: 'procedural', count: 200, size: 8 } as const;
  const all = await openDataset(spec);
  const train = await openDataset(spec, { split: 'train', evalFraction: 0.2 });
  const evl = await openDataset(spec, { split: 'eval', evalFraction: 0.2 });
  assert.equal(train.size + evl.size, all.size);
  assert.ok(evl.size > 20 && evl.size < 60, `eval size ${evl.size}`);
  const trainIds = new Set(Array.from({ length: train.size }, (_, k) => train.id(k)));
  for (let k = 0; k < evl.size; k++) {
    assert.ok(!trainIds.has(evl.id(k)));
    assert.equal(splitOf(evl.id(k), 0.2), 'eval');
  }
  const s = await evl.get(0);
  assert.equal(s?.split, 'eval');
  await assert.rejects(openDataset(spec, { split: 'eval', evalFraction: 0 }), /eval split is empty/);
});

test('sample(cursor): endless, deterministic, each epoch a permutation with fresh corruptions', async () => {
  const ds = await openDataset({ kind: 'procedural', count: 6, size: 16 }, { seed: 1 });
  const epoch0 = await Promise.all([0, 1, 2, 3, 4, 5].map((c) => ds.sample(c)));
  const epoch1 = await Promise.all([6, 7, 8, 9, 10, 11].map((c) => ds.sample(c)));
  assert.deepEqual(epoch0.map((s) => s.id).sort(), Array.from({ length: 6 }, (_, k) => ds.id(k)).sort());
  assert.deepEqual(epoch1.map((s) => s.id).sort(), epoch0.map((s) => s.id).sort());
  const again = await ds.sample(8);
  assert.ok(sameBytes(again.corrupted, epoch1[2].corrupted));
  const e0 = new Map(epoch0.map((s) => [s.id, s]));
  const changed = epoch1.filter((s) => !sameBytes(s.corrupted, e0.get(s.id)!.corrupted)).length;
  assert.ok(changed >= 4, `corruptions redrawn in epoch 1 for ${changed} of 6`);
  const seen: string[] = [];
  for await (const s of ds) seen.push(s.id);
  assert.equal(seen.length, 6);
});

test('folder: nested folders, odd sizes, grey, alpha, JPEG and WebP; a truncated image is skipped and named', async (t) => {
  const dir = tempDir(t);
  await writeFixture(dir, 'a.png', scene(1, 50, 30));
  await writeFixture(dir, 'sub/b.jpg', scene(2, 17, 41));
  await writeFixture(dir, 'sub/deeper/c.webp', scene(3, 33, 33));
  await writeFixture(dir, 'sub/deeper/d_grey.png', scene(4, 40, 21), { grey: true });
  await writeFixture(dir, 'e_alpha.PNG', scene(5, 29, 31), { alpha: true });
  await writeFixture(dir, 'f16.png', scene(6, 24, 24), { sixteen: true });
  writeFileSync(join(dir, 'notes.txt'), 'not an image');
  const good = readFileSync(join(dir, 'a.png'));
  writeFileSync(join(dir, 'sub', 'truncated.png'), good.subarray(0, good.length >> 1));
  const warnings: string[] = [];
  const skippedPaths: string[] = [];
  const ds = await openDataset({ kind: 'folder', path: dir, size: 16 }, {
    warn: (m) => warnings.push(m), onSkip: (p) => skippedPaths.push(p), seed: 2,
  });
  assert.equal(ds.size, 7);
  const ids = Array.from({ length: ds.size }, (_, k) => ds.id(k));
  assert.deepEqual(ids, ['a.png', 'e_alpha.PNG', 'f16.png', 'sub/b.jpg', 'sub/deeper/c.webp', 'sub/deeper/d_grey.png', 'sub/truncated.png']);
  const got: Sample[] = [];
  for await (const s of ds) got.push(s);
  assert.equal(got.length, 6);
  for (const s of got) checkSample(s, 16);
  assert.equal(ds.skipped, 1);
  assert.equal(skippedPaths.length, 1);
  assert.match(skippedPaths[0], /truncated\.png$/);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /skipping unreadable image .*truncated\.png/);
  // Again: still null, counted once.
  assert.equal(await ds.get(6), null);
  assert.equal(ds.skipped, 1);
  // sample() steps over it.
  for (let c = 0; c < 14; c++) assert.notEqual((await ds.sample(c)).id, 'sub/truncated.png');
  // The grey image comes back grey.
  const grey = got.find((s) => s.id.endsWith('d_grey.png'))!;
  for (let p = 0; p < 16 * 16; p++) assert.equal(grey.clean.data[p * 3], grey.clean.data[p * 3 + 2]);
});

test('folder: random crops are seeded and change with the epoch', async (t) => {
  const dir = tempDir(t);
  await writeFixture(dir, 'wide.png', scene(8, 96, 24));
  const ds = await openDataset({ kind: 'folder', path: dir, size: 24, crop: 'random' }, { seed: 5 });
  const e0 = await ds.get(0, 0);
  const e0b = await ds.get(0, 0);
  const crops = await Promise.all([1, 2, 3, 4].map((e) => ds.get(0, e)));
  assert.ok(e0 && e0b && sameBytes(e0.clean, e0b.clean));
  assert.ok(crops.some((c) => !sameBytes(c!.clean, e0.clean)));
});

test('folder: empty or missing is a clear error', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'empty', 'nested'), { recursive: true });
  writeFileSync(join(dir, 'empty', 'nested', 'readme.txt'), 'x');
  await assert.rejects(openDataset({ kind: 'folder', path: join(dir, 'empty'), size: 8 }), /empty dataset, no PNG, JPEG or WebP/);
  await assert.rejects(openDataset({ kind: 'folder', path: join(dir, 'nope'), size: 8 }), /nope: dataset folder does not exist/);
});

test('folder: when every image is unreadable, sample() says so', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'x.png'), 'garbage');
  const ds = await openDataset({ kind: 'folder', path: dir, size: 8 }, quiet);
  await assert.rejects(ds.sample(0), /no readable image/);
  assert.equal(ds.skipped, 1);
});

test('manifest: pairs with relative paths, a differently sized corrupted image, and a missing corrupted image', async (t) => {
  const dir = tempDir(t);
  await writeFixture(dir, 'img/c1.png', scene(1, 40, 30));
  await writeFixture(dir, 'img/k1.jpg', scene(1, 40, 30));
  await writeFixture(dir, 'img/c2.png', scene(2, 30, 30));
  await writeFixture(dir, 'img/k2.png', scene(12, 60, 60)); // twice the size
  await writeFixture(dir, 'img/c3.webp', scene(3, 20, 20));
  await writeFixture(dir, 'img/c4.png', scene(4, 20, 20));
  writeFileSync(join(dir, 'img', 'k4.png'), 'broken');
  const lines = [
    { id: 'one', clean: 'img/c1.png', corrupted: 'img/k1.jpg', type: 'jpeg_compression', level: 0.1 },
    { id: 'two', clean: 'img/c2.png', corrupted: 'img/k2.png' },
    { id: 'three', clean: 'img/c3.webp' },
    { id: 'four', clean: 'img/c4.png', corrupted: 'img/k4.png' },
  ];
  const path = join(dir, 'pairs.jsonl');
  writeFileSync(path, lines.map((l) => JSON.stringify(l)).join('\n') + '\n\n');
  const skipped: string[] = [];
  const ds = await openDataset({ kind: 'manifest', path, size: 12 }, { ...quiet, onSkip: (p) => skipped.push(p) });
  assert.equal(ds.size, 4);
  const [one, two, three, four] = await Promise.all([0, 1, 2, 3].map((k) => ds.get(k)));
  assert.ok(one && two && three);
  for (const s of [one, two, three]) checkSample(s, 12);
  assert.deepEqual(one.corruption, { type: 'jpeg_compression', level: 0.1 });
  assert.deepEqual(two.corruption, { type: 'external', level: null });
  assert.ok(CORRUPTION_TYPES.includes(three.corruption.type as never));
  assert.equal(four, null);
  assert.equal(ds.skipped, 1);
  assert.match(skipped[0], /k4\.png$/);
});

test('manifest: a bad line is an error naming the file and line', async (t) => {
  const dir = tempDir(t);
  const write = (name: string, text: string): string => { const p = join(dir, name); writeFileSync(p, text); return p; };
  const ok = '{"id": "a", "clean": "a.png", "corrupted": "b.png"}';
  await assert.rejects(openDataset({ kind: 'manifest', path: write('m1.jsonl', `${ok}\n{"id": "b", "clean": \n`), size: 8 }),
    /m1\.jsonl:2: not valid JSON/);
  await assert.rejects(openDataset({ kind: 'manifest', path: write('m2.jsonl', `${ok}\n\n{"id": "b"}\n`), size: 8 }),
    /m2\.jsonl:3: bad manifest entry \(clean: /);
  await assert.rejects(openDataset({ kind: 'manifest', path: write('m3.jsonl', `${ok}\n${ok}\n`), size: 8 }),
    /m3\.jsonl:2: duplicate id 'a' \(first on line 1\)/);
  await assert.rejects(openDataset({ kind: 'manifest', path: write('m4.jsonl', '\n\n'), size: 8 }), /m4\.jsonl: the manifest has no entries/);
  await assert.rejects(openDataset({ kind: 'manifest', path: join(dir, 'none.jsonl'), size: 8 }), /none\.jsonl: cannot read manifest \(ENOENT\)/);
  assert.equal(parseManifest(`${ok}\r\n`, 'x').length, 1);
  // a label without the image it labels
  assert.throws(() => parseManifest('{"id": "a", "clean": "a.png", "type": "gaussian_noise", "level": 0.5}', 'm5.jsonl'),
    /^Error: m5\.jsonl:1: bad manifest entry \(type: labels a given corrupted image: set "corrupted" too.*; level: labels a given corrupted image/);
  assert.equal(parseManifest('{"id": "a", "clean": "a.png", "corrupted": "b.png", "type": "gaussian_noise", "level": 0.5}', 'x')[0]!.level, 0.5);
});

test('specs and configs are validated by the exported zod schemas', async () => {
  assert.throws(() => datasetSpecSchema.parse({ kind: 'folder', size: 32 }));
  assert.throws(() => datasetSpecSchema.parse({ kind: 'zip', path: 'x', size: 32 }));
  await assert.rejects(openDataset({ kind: 'procedural', count: 0, size: 32 } as never), /dataset spec: count/);
  const cfg = dataConfigSchema.parse({});
  assert.deepEqual(cfg.dataset, { kind: 'procedural', count: 1024, size: 32, seed: 0 });
  assert.equal(cfg.evalFraction, 0.1);
  assert.deepEqual(cfg.corruptions.levels, ['low', 'mid', 'high']);
  assert.throws(() => dataConfigSchema.parse({ corruptions: { types: { fog: 1 } } }));
  const ds = await openDataConfig({ dataset: { kind: 'procedural', count: 10, size: 8 }, corruptions: { types: { graffiti: 1 } } });
  const s = await ds.get(0);
  assert.equal(s?.corruption.type, 'graffiti');
});

test('manifest: the lines of one scene are on one side of the split (by clean image, or by group)', async (t) => {
  const dir = tempDir(t);
  await writeFixture(dir, 'scene.png', scene(1, 20, 20));
  await writeFixture(dir, 'other.png', scene(2, 20, 20));
  // a paired set: one clean image, a corrupted version per type and level, one line each (review23a: split by id, 4
  // of 12 lines of one clean image were evaluated and 8 trained on)
  // (the clean path written three ways: one file, one key)
  const forms = ['scene.png', './scene.png', join(dir, 'scene.png')];
  const lines: object[] = Array.from({ length: 12 }, (_, k) => ({ id: `scene-${k}`, clean: forms[k % 3], corrupted: 'other.png' }));
  lines.push(...Array.from({ length: 12 }, (_, k) => ({ id: `grouped-${k}`, clean: k % 2 ? 'scene.png' : 'other.png', corrupted: 'scene.png', group: 'g1' })));
  // lines without a corrupted image of their own keep the split by id they had before round 23
  lines.push(...Array.from({ length: 12 }, (_, k) => ({ id: `plain-${k}`, clean: 'scene.png' })));
  const path = join(dir, 'pairs.jsonl');
  writeFileSync(path, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  const ids = async (split: 'train' | 'eval', evalFraction: number) => {
    const ds = await openDataset({ kind: 'manifest', path, size: 8 }, { ...quiet, split, evalFraction }).catch(() => null);
    return ds ? Array.from({ length: ds.size }, (_, k) => ds.id(k)) : [];
  };
  for (const f of [0.1, 0.3, 0.5, 0.7, 0.9]) {
    const [train, evals] = [await ids('train', f), await ids('eval', f)];
    assert.equal(train.length + evals.length, 36);
    for (const id of evals.filter((x) => x.startsWith('plain-'))) assert.equal(splitOf(id, f), 'eval');
    for (const id of train.filter((x) => x.startsWith('plain-'))) assert.equal(splitOf(id, f), 'train');
    for (const prefix of ['scene-', 'grouped-']) {
      const sides = [train, evals].filter((s) => s.some((id) => id.startsWith(prefix))).length;
      assert.equal(sides, 1, `evalFraction ${f}: the lines of ${prefix}* are on both sides`);
    }
  }
});
