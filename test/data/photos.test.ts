// The built-in photo dataset: the committed manifest (licences, digests, ids), the seeded split by scene,
// seeded training crops, whole-image evaluation and the bad images a folder may hold.
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { openDataset } from '../../lib/data/dataset.ts';
import { cropSquare, decodeImage, decodeWhole, dihedral, MAX_INPUT_PIXELS } from '../../lib/data/image.ts';
import {
  buildPhotoEntries, copyrightPath, formatPhotoManifest, packageRoot, parsePhotoManifest, PHOTO_EXTRACTED_PACKAGES, PHOTO_MANIFEST, PHOTO_PACKAGES,
  PHOTO_SOURCES, photoFile, sha256, splitPhotoGroups, verifyPhotoEntries,
} from '../../lib/data/photos.ts';
import { scene, tempDir, writeFixture } from './helpers.ts';

const manifest = parsePhotoManifest(readFileSync(PHOTO_MANIFEST, 'utf8'), PHOTO_MANIFEST);
const installed = [...PHOTO_PACKAGES, ...PHOTO_EXTRACTED_PACKAGES].every((p) => existsSync(copyrightPath(p, packageRoot(p))));
const needPackages = installed ? false : 'photo packages not installed (run scripts/ensure-photos.sh)';

test('photo manifest: one entry per source, a licence, a SHA-256 digest and a scene group each, unique ids', () => {
  assert.equal(manifest.length, PHOTO_SOURCES.length);
  assert.ok(manifest.length >= 64 + 8, `${manifest.length} photographs`);
  assert.equal(new Set(manifest.map((e) => e.id)).size, manifest.length);
  for (const [i, e] of manifest.entries()) {
    assert.equal(e.clean, PHOTO_SOURCES[i].file);
    assert.equal(e.package, PHOTO_SOURCES[i].package);
    assert.equal(e.licence, PHOTO_SOURCES[i].licence);
    assert.ok(([...PHOTO_PACKAGES, ...PHOTO_EXTRACTED_PACKAGES] as string[]).includes(e.package), e.package);
    assert.equal(e.evalLast, PHOTO_SOURCES[i].evalLast);
    assert.match(e.sha256, /^[0-9a-f]{64}$/);
  }
  // Two digests alike would be one photograph twice (on both sides of a split).
  assert.equal(new Set(manifest.map((e) => e.sha256)).size, manifest.length);
});

test('photo manifest: the installed files match its digests and licences (built afresh from the packages)', { skip: needPackages }, async () => {
  await verifyPhotoEntries(manifest);
  assert.deepEqual(await buildPhotoEntries(), manifest);
});

test('photo manifest: a missing package is an error that says how to supply images instead', async (t) => {
  const root = tempDir(t);
  await assert.rejects(buildPhotoEntries(PHOTO_SOURCES.slice(0, 1), root), /opencv-doc is not installed.*ensure-photos\.sh.*'folder'.*'manifest'/s);
  await assert.rejects(verifyPhotoEntries(manifest.slice(0, 1), root), /opencv-doc are missing.*ensure-photos\.sh/s);
});

test('photo manifest: a licence the copyright file does not name is refused', async (t) => {
  const root = tempDir(t);
  const src = { package: 'pkg', licence: 'CC-BY-4.0', file: '/img.png' };
  await writeFixture(root, 'img.png', scene(1, 8));
  const doc = join(root, 'usr/share/doc/pkg');
  (await import('node:fs')).mkdirSync(doc, { recursive: true });
  writeFileSync(join(doc, 'copyright'), 'Files: *\nLicense: GPL-2+\n');
  await assert.rejects(buildPhotoEntries([src], root), /licence 'CC-BY-4\.0' not found/);
  writeFileSync(join(doc, 'copyright'), 'Files: img.png\nLicense: CC-BY-4.0\n');
  const [e] = await buildPhotoEntries([src], root);
  assert.equal(e.licence, 'CC-BY-4.0');
  assert.equal(e.sha256, (await import('node:crypto')).createHash('sha256').update(readFileSync(join(root, 'img.png'))).digest('hex'));
});

test('photo split: seeded, by scene (a group never on both sides), at least evalImages in eval', () => {
  const split = splitPhotoGroups(manifest, 64, 0);
  const evalIds = manifest.filter((e) => split.get(e.id) === 'eval');
  assert.ok(evalIds.length >= 64, `${evalIds.length} eval`);
  assert.ok(evalIds.length < manifest.length);
  for (const g of new Set(manifest.map((e) => e.group))) {
    const sides = new Set(manifest.filter((e) => e.group === g).map((e) => split.get(e.id)));
    assert.equal(sides.size, 1, `group ${g} on both sides`);
  }
  assert.deepEqual(splitPhotoGroups(manifest, 64, 0), split);
  assert.notDeepEqual(splitPhotoGroups(manifest, 64, 1), split);
  // The stereo pair shares a group, so it lands on one side whatever the seed.
  for (let seed = 0; seed < 5; seed++) {
    const s = splitPhotoGroups(manifest, 40, seed);
    assert.equal(s.get('opencv-doc/data-aloeL'), s.get('opencv-doc/data-aloeR'));
  }
});

test('photo split: photographs marked evalLast go to training; the evaluation split is the one without them', () => {
  const before = manifest.filter((e) => !e.evalLast);
  assert.ok(before.length < manifest.length, 'the manifest has evalLast photographs');
  for (let seed = 0; seed < 4; seed++) {
    const now = splitPhotoGroups(manifest, 64, seed);
    const then = splitPhotoGroups(before, 64, seed);
    for (const e of before) assert.equal(now.get(e.id), then.get(e.id), `seed ${seed}: ${e.id}`);
    for (const e of manifest.filter((x) => x.evalLast)) assert.equal(now.get(e.id), 'train', `seed ${seed}: ${e.id}`);
  }
  // Without enough other scenes they are still taken, last.
  const small = splitPhotoGroups(manifest, manifest.length - 2, 0);
  assert.ok(manifest.some((e) => e.evalLast && small.get(e.id) === 'eval'));
});

test('photo split: the validation split takes whole training scenes after the evaluation ones, seeded', () => {
  const plain = splitPhotoGroups(manifest, 64, 0);
  const s = splitPhotoGroups(manifest, 64, 0, 8);
  const ids = (m: Map<string, string>, side: string) => manifest.filter((e) => m.get(e.id) === side).map((e) => e.id);
  assert.deepEqual(ids(s, 'eval'), ids(plain, 'eval'), 'the evaluation split does not move');
  const val = ids(s, 'val');
  assert.ok(val.length >= 8 && val.length < 8 + 2, `${val.length} validation photographs`);
  assert.ok(ids(s, 'train').length > 0);
  for (const id of val) assert.equal(plain.get(id), 'train', `${id} was a training photograph`);
  for (const g of new Set(manifest.map((e) => e.group))) {
    assert.equal(new Set(manifest.filter((e) => e.group === g).map((e) => s.get(e.id))).size, 1, `group ${g} on two sides`);
  }
  assert.notDeepEqual(ids(splitPhotoGroups(manifest, 64, 1, 8), 'val'), val);
});

test('photos dataset: train and eval hold disjoint photographs; eval images are whole, shorter side evalSize', { skip: needPackages }, async () => {
  const spec = { kind: 'photos' as const, size: 24, evalSize: 40, evalImages: 64 };
  const train = await openDataset(spec, { split: 'train' });
  const ev = await openDataset(spec, { split: 'eval' });
  assert.ok(ev.size >= 64);
  assert.equal(train.size + ev.size, manifest.length);
  const trainIds = new Set(Array.from({ length: train.size }, (_, i) => train.id(i)));
  for (let i = 0; i < ev.size; i++) assert.ok(!trainIds.has(ev.id(i)));
  const s = (await ev.get(0))!;
  assert.equal(Math.min(s.clean.width, s.clean.height), 40);
  assert.equal(Math.max(s.clean.width, s.clean.height) % 8, 0);
  const c = await train.sample(0);
  assert.deepEqual([c.clean.width, c.clean.height], [24, 24]);
});

test('seeded crops: same seed and epoch give the same crop, inside the image at evaluation scale; epochs differ', async (t) => {
  const dir = tempDir(t);
  const path = await writeFixture(dir, 'wide.png', scene(3, 300, 180));
  const spec = { kind: 'folder' as const, path: dir, size: 32, crop: 'random' as const, evalSize: 90 };
  const a = await openDataset(spec, { split: 'train', evalFraction: 0, seed: 7 });
  const b = await openDataset(spec, { split: 'train', evalFraction: 0, seed: 7 });
  const c = await openDataset(spec, { split: 'train', evalFraction: 0, seed: 8 });
  const whole = await decodeWhole(path, 90, 1);
  assert.deepEqual([whole.width, whole.height], [150, 90]);
  const found = (img: { data: Uint8Array }): boolean => {
    for (let y = 0; y <= whole.height - 32; y++) {
      for (let x = 0; x <= whole.width - 32; x++) {
        if (Buffer.compare(Buffer.from(cropSquare(whole, 32, { x: x / (whole.width - 32), y: y / (whole.height - 32) }).data), Buffer.from(img.data)) === 0) return true;
      }
    }
    return false;
  };
  const crops = new Set<string>();
  for (let epoch = 0; epoch < 4; epoch++) {
    const sa = (await a.get(0, epoch))!;
    const sb = (await b.get(0, epoch))!;
    assert.deepEqual(sa.clean.data, sb.clean.data, 'same seed, same crop');
    assert.deepEqual(sa.corrupted.data, sb.corrupted.data);
    assert.ok(found(sa.clean), `epoch ${epoch}: the crop is a ${32}x${32} block of the image at evaluation scale`);
    crops.add(Buffer.from(sa.clean.data).toString('base64'));
    if (epoch === 0) assert.notDeepEqual((await c.get(0, 0))!.clean.data, sa.clean.data, 'another seed, another crop');
  }
  assert.ok(crops.size >= 3, `${crops.size} distinct crops over 4 epochs`);
});

test('dihedral: the 8 symmetries of a square, against sharp\'s flop and rotate', async () => {
  const img = scene(9, 13, 13);
  const raw = { raw: { width: 13, height: 13, channels: 3 as const } };
  const seen = new Set<string>();
  for (let k = 0; k < 8; k++) {
    const flopped = k & 1 ? await sharp(img.data, raw).flop().raw().toBuffer() : Buffer.from(img.data);
    const want = await sharp(flopped, raw).rotate(90 * (k >> 1)).raw().toBuffer();
    const got = dihedral(img, k);
    assert.deepEqual([got.width, got.height], [13, 13]);
    assert.deepEqual(Buffer.from(got.data), want, `k ${k}`);
    seen.add(want.toString('base64'));
  }
  assert.equal(seen.size, 8);
  assert.throws(() => dihedral(img, 8), /0\.\.7/);
  assert.throws(() => dihedral(scene(1, 8, 6), 1), /square/);
});

test('photos dataset: augment flips and turns each training crop, seeded; evaluation images are untouched', async (t) => {
  const dir = tempDir(t);
  const files = [await writeFixture(dir, 'a.png', scene(2, 90, 60)), await writeFixture(dir, 'b.png', scene(4, 60, 90))];
  const entries = files.map((f, i) => ({ id: `fx/${i}`, clean: f, package: 'fixture', licence: 'CC0-1.0', sha256: sha256(readFileSync(f)), group: `fx/${i}` }));
  const path = join(dir, 'photos.jsonl');
  writeFileSync(path, formatPhotoManifest(entries));
  const spec = { kind: 'photos' as const, size: 16, evalSize: 40, evalImages: 1, manifest: path };
  const plain = await openDataset(spec, { split: 'train', seed: 3 });
  const aug = await openDataset({ ...spec, augment: true }, { split: 'train', seed: 3 });
  const again = await openDataset({ ...spec, augment: true }, { split: 'train', seed: 3 });
  const used = new Set<number>();
  for (let epoch = 0; epoch < 12; epoch++) {
    const p = (await plain.get(0, epoch))!;
    const a = (await aug.get(0, epoch))!;
    assert.deepEqual(a.clean.data, (await again.get(0, epoch))!.clean.data, 'seeded');
    const k = [0, 1, 2, 3, 4, 5, 6, 7].find((j) => Buffer.compare(Buffer.from(dihedral(p.clean, j).data), Buffer.from(a.clean.data)) === 0);
    assert.ok(k !== undefined, `epoch ${epoch}: the augmented crop is a symmetry of the plain one`);
    used.add(k);
  }
  assert.ok(used.size >= 4, `${used.size} symmetries over 12 epochs`);
  const ev = (await openDataset({ ...spec, augment: true }, { split: 'eval', seed: 3 }).then((d) => d.get(0)))!;
  assert.deepEqual(ev.clean.data, (await openDataset(spec, { split: 'eval', seed: 3 }).then((d) => d.get(0)))!.clean.data);
});

test('extracted packages: read from the cache unless installed; a missing one names the package', async (t) => {
  const root = tempDir(t);
  const cache = tempDir(t);
  const old = process.env.RECOVERY_GRPO_PHOTO_CACHE;
  process.env.RECOVERY_GRPO_PHOTO_CACHE = cache;
  t.after(() => {
    if (old === undefined) delete process.env.RECOVERY_GRPO_PHOTO_CACHE;
    else process.env.RECOVERY_GRPO_PHOTO_CACHE = old;
  });
  const pkg = PHOTO_EXTRACTED_PACKAGES[0];
  const src = { package: pkg, licence: 'BSD-3-Clause', file: '/usr/lib/x/cat.png', evalLast: true };
  await assert.rejects(buildPhotoEntries([src], root), new RegExp(`${pkg} is not installed.*ensure-photos\\.sh`, 's'));
  const unpacked = join(cache, pkg);
  (await import('node:fs')).mkdirSync(join(unpacked, 'usr/share/doc', pkg), { recursive: true });
  writeFileSync(copyrightPath(pkg, unpacked), 'Files: *\nLicense: BSD-3-Clause\n');
  await writeFixture(unpacked, 'usr/lib/x/cat.png', scene(7, 10));
  assert.equal(packageRoot(pkg, root), unpacked);
  const [e] = await buildPhotoEntries([src], root);
  assert.deepEqual([e.clean, e.evalLast, e.id], ['/usr/lib/x/cat.png', true, `${pkg}/cat`]);
  assert.equal(photoFile(e, root), join(unpacked, 'usr/lib/x/cat.png'));
  await verifyPhotoEntries([e], root);
  // Installed under the root: read from there, the cache ignored.
  (await import('node:fs')).mkdirSync(join(root, 'usr/share/doc', pkg), { recursive: true });
  writeFileSync(copyrightPath(pkg, root), 'Files: *\nLicense: BSD-3-Clause\n');
  assert.equal(packageRoot(pkg, root), root);
  await assert.rejects(verifyPhotoEntries([e], root), new RegExp(`${pkg} are missing`));
});

test('cropSquare: refuses a crop that does not fit', () => {
  assert.throws(() => cropSquare(scene(1, 20, 10), 12, { x: 0, y: 0 }), /does not fit in 20x10/);
});

/** A PNG whose header claims width x height (the pixel data is a stub: a decoder must refuse it first). */
function pngHeader(width: number, height: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(16))), chunk('IEND', Buffer.alloc(0))]);
}

test('bad images: unreadable, truncated, CMYK and enormous are skipped and named with a reason; grey and 16-bit convert exactly', async (t) => {
  const dir = tempDir(t);
  const good = scene(5, 60, 40);
  await writeFixture(dir, 'good.png', good);
  const greyValues = Uint8Array.from({ length: 60 * 40 }, (_, i) => (i * 37) % 256);
  writeFileSync(join(dir, 'grey.png'), await sharp(greyValues, { raw: { width: 60, height: 40, channels: 1 } }).toColourspace('b-w').png().toBuffer());
  await writeFixture(dir, 'deep16.png', good, { sixteen: true });
  writeFileSync(join(dir, 'unreadable.png'), 'this is not an image');
  const jpeg = await sharp(good.data, { raw: { width: 60, height: 40, channels: 3 } }).jpeg().toBuffer();
  writeFileSync(join(dir, 'truncated.jpg'), jpeg.subarray(0, jpeg.length >> 1));
  writeFileSync(join(dir, 'cmyk.jpg'), await sharp(good.data, { raw: { width: 60, height: 40, channels: 3 } }).toColourspace('cmyk').jpeg().toBuffer());
  writeFileSync(join(dir, 'enormous.png'), pngHeader(30000, 30000));
  assert.ok(30000 * 30000 > MAX_INPUT_PIXELS);

  // Exact conversions: 16-bit holds v*257, read back as v; grey becomes R = G = B = the grey value.
  assert.deepEqual((await decodeImage(join(dir, 'deep16.png'))).data, good.data);
  assert.equal((await sharp(join(dir, 'grey.png')).metadata()).channels, 1);
  const grey = await decodeImage(join(dir, 'grey.png'));
  for (let p = 0; p < 60 * 40; p++) for (let ch = 0; ch < 3; ch++) assert.equal(grey.data[p * 3 + ch], greyValues[p]);

  // decodeImage on its own (a PNG takes one sharp call, without the header read): the same refusals.
  for (const size of [undefined, 16]) {
    await assert.rejects(decodeImage(join(dir, 'enormous.png'), size), /enormous image: 30000x30000/);
    await assert.rejects(decodeImage(readFileSync(join(dir, 'enormous.png')), size), /enormous image: 30000x30000/);
    await assert.rejects(decodeImage(join(dir, 'cmyk.jpg'), size), /CMYK/);
    await assert.rejects(decodeImage(join(dir, 'unreadable.png'), size), /unsupported image format/i);
  }
  const cutPng = readFileSync(join(dir, 'good.png'));
  await assert.rejects(decodeImage(cutPng.subarray(0, cutPng.length >> 1), 16));

  for (const [split, evalFraction] of [['train', 0], ['eval', 1]] as const) {
    const skipped = new Map<string, string>();
    const ds = await openDataset({ kind: 'folder', path: dir, size: 16, crop: 'random', evalSize: 32 }, {
      split, evalFraction, onSkip: (p, r) => skipped.set(p.slice(dir.length + 1), r), warn: () => undefined,
    });
    const ok: string[] = [];
    for await (const s of ds) ok.push(s.id);
    assert.deepEqual(ok.sort(), ['deep16.png', 'good.png', 'grey.png'], split);
    assert.equal(ds.skipped, 4);
    assert.deepEqual([...skipped.keys()].sort(), ['cmyk.jpg', 'enormous.png', 'truncated.jpg', 'unreadable.png']);
    assert.match(skipped.get('cmyk.jpg')!, /CMYK/);
    assert.match(skipped.get('enormous.png')!, /enormous image: 30000x30000/);
    assert.match(skipped.get('unreadable.png')!, /unsupported image format|Input/i);
    assert.match(skipped.get('truncated.jpg')!, /premature|truncat|corrupt|VipsJpeg/i);
    // Training never stops on them: the stream goes round the readable ones.
    for (let c = 0; c < 10; c++) assert.ok(['deep16.png', 'good.png', 'grey.png'].includes((await ds.sample(c)).id));
  }
});

test('run configuration: data.valImages and data.augment reach the photos dataset spec', async () => {
  const { dataConfigFrom } = await import('../../lib/data/dataset.ts');
  const { loadConfig } = await import('../../lib/config/index.ts');
  const plain = dataConfigFrom(loadConfig(undefined, []).data).dataset;
  assert.deepEqual([plain.kind, 'valImages' in plain && plain.valImages, 'augment' in plain && plain.augment], ['photos', 0, false]);
  const set = dataConfigFrom(loadConfig(undefined, ['data.valImages=8', 'data.augment=true']).data).dataset;
  assert.deepEqual(['valImages' in set && set.valImages, 'augment' in set && set.augment], [8, true]);
});
