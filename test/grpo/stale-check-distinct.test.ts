// The stale-row check's forward on the rows' distinct images (lib/grpo/stale-check.ts distinctRows, round 27: stale27):
// round 26 ran the policy graph over every checked row (its shared rows ran the network on the distinct images, then
// copied the mean back onto every row and computed each row's action and log-density, unread); round 27 runs the
// network on the distinct images alone and copies their means onto the rows in JavaScript. Checked here: the values
// are round 26's, byte for byte, for both network architectures, batches of several shapes and row subsets, at two
// threads per operator as the learner runs them: the check refuses exactly the rows it refused before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../lib/config/index.ts';
import { intraOpThreads, setIntraOpThreads } from '../../lib/graph/runtime.ts';
import { initPolicyParams, LOG_STD } from '../../lib/models/policy.ts';
import { policySpecOf } from '../../lib/models/bundle.ts';
import { PolicyRunner } from '../../lib/models/runner.ts';
import { distinctRows, gatherRows, gaussianRowLogp, policyRecompute } from '../../lib/grpo/stale-check.ts';
import type { TensorMap } from '../../lib/checkpoint/tensors.ts';
import { testRandom } from '../graph/gradcheck.ts';

const P16 = 3 * 16 * 16;
const bytes = (a: { buffer: ArrayBufferLike; byteOffset: number; byteLength: number }) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** n rows whose consecutive runs of equal images have the lengths `groups` (summing to n). */
function imagesOf(groups: number[], seed: number, P = P16): Float32Array {
  const rand = testRandom(seed);
  const n = groups.reduce((a, b) => a + b, 0);
  const out = new Float32Array(n * P);
  let row = 0;
  for (const g of groups) {
    const img = Float32Array.from({ length: P }, () => 0.1 + 0.8 * rand());
    for (let k = 0; k < g; k++) out.set(img, (row++) * P);
  }
  return out;
}

test('distinctRows: the distinct images of the rows and each row\'s; one image for several rows is run twice', () => {
  const images = imagesOf([3, 1, 2], 4);
  const d = distinctRows(images, 6);
  assert.equal(d.count, 3);
  assert.deepEqual([...d.source], [0, 0, 0, 1, 2, 2]);
  for (const [k, row] of [[0, 0], [1, 3], [2, 4]]) assert.ok(bytes(d.images.subarray(k * P16, (k + 1) * P16)).equals(bytes(images.subarray(row * P16, (row + 1) * P16))));
  // a network batch of one differs from a larger one (onnxruntime's Conv): never for several rows
  assert.deepEqual([...distinctRows(imagesOf([2], 4), 2).source], [0, 0], 'two equal rows: both the first image\'s');
  const one = distinctRows(imagesOf([5], 4), 5);
  assert.equal(one.count, 2);
  assert.deepEqual([...one.source], [0, 0, 0, 0, 0]);
  assert.ok(bytes(one.images.subarray(0, P16)).equals(bytes(one.images.subarray(P16))));
  assert.equal(distinctRows(imagesOf([1], 4), 1).count, 1);
  const all = imagesOf([1, 1, 1], 4);
  assert.equal(distinctRows(all, 3).images, all, 'every row its own image: no copy');
  assert.throws(() => distinctRows(new Float32Array(10), 3), /stale check images: 10 values do not split into n = 3 rows/);
});

// the default run's network at its size, and a small U-Net
for (const [arch, size, width, depth] of [['resnet', 32, 16, 4], ['unet', 16, 8, 2]] as const) {
  test(`the check's values are round 26's bytes (${arch}, ${size} px; two threads per operator)`, async () => {
    const before = intraOpThreads();
    setIntraOpThreads(2);
    const P = 3 * size * size;
    const config = loadConfig(undefined, [`data.size=${size}`, `model.arch=${arch}`, `model.width=${width}`, `model.depth=${depth}`, 'model.logStd=-1', 'grpo.advantageMode=dense', 'grpo.maxStaleness=1']);
    const runner = await PolicyRunner.create(config);
    try {
      const params = initPolicyParams(policySpecOf(config), 3);
      const rand = testRandom(9);
      for (const groups of [[8, 8, 8, 8], [8, 8, 8], [1, 1, 1, 1, 1, 1, 1], [2, 6], [5, 3, 1, 4], [8], [2], [1, 1]]) {
        const n = groups.reduce((a, b) => a + b, 0);
        const images = imagesOf(groups, n, P);
        const rowMean = await runner.mean(params, images, n);
        const actions = Float32Array.from({ length: n * P }, (_, i) => rowMean[i]! + 0.3 * (rand() - 0.5));
        const logpOld = Float32Array.from({ length: n * P }, () => -0.5 + 0.1 * rand());
        // round 26's policyRecompute, verbatim: the policy graph over every checked row, then the density
        const round26 = async (p: TensorMap, rows: number[]) =>
          gaussianRowLogp(gatherRows(actions, rows, P), await runner.mean(p, gatherRows(images, rows, P), rows.length), p.get(LOG_STD)!.data[0]!, gatherRows(logpOld, rows, P), rows.length);
        const recompute = policyRecompute({ n, images, actions, logpOld }, LOG_STD, (p, im, m) => runner.mean(p, im, m));
        // every row, a consecutive tail (a view, no copy), scattered rows (gathered), one row (a batch of one)
        for (const rows of [[...Array(n).keys()], [...Array(n).keys()].slice(Math.floor(n / 3)), [...Array(n).keys()].filter((i) => i % 3 !== 1), [n - 1]]) {
          if (rows.length === 0) continue;
          const want = await round26(params, rows);
          const got = await recompute(params, rows);
          assert.ok(bytes(Float64Array.from(got.logp)).equals(bytes(want.logp)), `groups ${groups}, rows ${rows}: logp`);
          assert.ok(bytes(Float64Array.from(got.ratio)).equals(bytes(want.ratio)), `groups ${groups}, rows ${rows}: ratio`);
        }
      }
    } finally {
      await runner.release();
      setIntraOpThreads(before);
    }
  });
}

test('policyRecompute refuses a mean that is not one per distinct image', async () => {
  const n = 4;
  const b = { n, images: imagesOf([2, 2], 2), actions: new Float32Array(n * P16), logpOld: new Float32Array(n * P16) };
  const params = new Map([[LOG_STD, { data: Float32Array.of(-1), shape: [] }]]);
  const wrong = policyRecompute(b, LOG_STD, async () => new Float32Array(n * P16));
  await assert.rejects(wrong(params, [0, 1, 2, 3]), /stale check: a mean of 3072 values for 2 images of 768/);
});

// Round 28 (lcpu28): policyRecompute reads each row's mean from the distinct images' means in place (gaussianRowLogp's
// meanRows) instead of first copying them onto every row (gatherRows): the same values, so the same bytes.
test('gaussianRowLogp with meanRows: the bytes of the same call on the means copied onto every row', () => {
  const rand = testRandom(9);
  const P = 48;
  for (const [R, sources, dense] of [[6, [0, 0, 0, 1, 2, 2], true], [6, [0, 0, 0, 1, 2, 2], false], [4, [0, 0, 0, 0], true], [3, [0, 1, 2], true]] as const) {
    const M = Math.max(...sources) + 1;
    const mean = Float32Array.from({ length: M * P }, () => rand() - 0.5);
    const actions = Float32Array.from({ length: R * P }, () => rand() - 0.5);
    const logpOld = Float32Array.from({ length: dense ? R * P : R }, () => -1 - rand());
    const copied = gaussianRowLogp(actions, gatherRows(mean, [...sources], P), -1.2, logpOld, R);
    const inPlace = gaussianRowLogp(actions, mean, -1.2, logpOld, R, Float32Array.from(sources));
    assert.ok(bytes(inPlace.logp).equals(bytes(copied.logp)), `logp, rows ${sources}`);
    assert.ok(bytes(inPlace.ratio).equals(bytes(copied.ratio)), `ratio, rows ${sources}`);
  }
  const mean = new Float32Array(2 * P);
  assert.throws(() => gaussianRowLogp(new Float32Array(3 * P), mean, 0, new Float32Array(3), 3, [0, 2, 1]), /row 1's mean row 2 is not one of the 2 rows of mean/);
  assert.throws(() => gaussianRowLogp(new Float32Array(3 * P), mean, 0, new Float32Array(3), 3, [0, 1]), /2 mean rows for 3 rows/);
  assert.throws(() => gaussianRowLogp(new Float32Array(3 * P), mean, 0, new Float32Array(3), 3), /144 action and 96 mean values for 3 rows/);
});
