// The stale-row check's forward on two lanes (learner/stale-lanes.ts, round 27): where the rows are cut, and that the
// lanes' means, and the check's log-densities and ratios computed part by part, are the same bytes as round 26's
// one run on the KL reference's session (PolicyRunner.mean at two threads per operator), for both network
// architectures and batches of several shapes: the check refuses exactly the rows it refused before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../lib/config/index.ts';
import { intraOpThreads, setIntraOpThreads } from '../../lib/graph/runtime.ts';
import { initPolicyParams, LOG_STD } from '../../lib/models/policy.ts';
import { policySpecOf } from '../../lib/models/bundle.ts';
import { PolicyRunner } from '../../lib/models/runner.ts';
import { distinctRows, gatherRows, gaussianRowLogp, policyRecompute } from '../../lib/grpo/stale-check.ts';
import type { TensorMap } from '../../lib/checkpoint/tensors.ts';
import { staleCheckParts, StaleCheckLanes } from '../../learner/stale-lanes.ts';
import { testRandom } from '../graph/gradcheck.ts';

const S = 16;
const P16 = 3 * S * S;
const bytes = (a: ArrayLike<number> & { buffer: ArrayBufferLike; byteOffset: number; byteLength: number }) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

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

test('staleCheckParts: cut at a group boundary, the first part the larger half of the groups; never a part of one row', () => {
  assert.deepEqual(staleCheckParts(imagesOf([8, 8, 8, 8], 1), 32), [[0, 16], [16, 16]]);
  assert.deepEqual(staleCheckParts(imagesOf([8, 8, 8], 1), 24), [[0, 16], [16, 8]]);
  assert.deepEqual(staleCheckParts(imagesOf([1, 1, 1, 1, 1], 1), 5), [[0, 3], [3, 2]]);
  assert.deepEqual(staleCheckParts(imagesOf([1, 1, 1, 1], 1), 4), [[0, 2], [2, 2]]);
  assert.deepEqual(staleCheckParts(imagesOf([2, 6], 1), 8), [[0, 2], [2, 6]]);
  // one image, or a cut that would leave one row: one part
  assert.deepEqual(staleCheckParts(imagesOf([8], 1), 8), [[0, 8]]);
  assert.deepEqual(staleCheckParts(imagesOf([3, 1], 1), 4), [[0, 4]]);
  assert.deepEqual(staleCheckParts(imagesOf([1, 1, 1], 1), 3), [[0, 3]]);
  assert.deepEqual(staleCheckParts(imagesOf([1], 1), 1), [[0, 1]]);
});

// the default run's network at its size, and a small U-Net
for (const [arch, size, width, depth] of [['resnet', 32, 16, 4], ['unet', 16, 8, 2]] as const) {
  test(`the lanes' means and the check's values are round 26's bytes (${arch}, ${size} px; two threads per operator)`, async () => {
    const before = intraOpThreads();
    setIntraOpThreads(2);
    const P = 3 * size * size;
    const config = loadConfig(undefined, [`data.size=${size}`, `model.arch=${arch}`, `model.width=${width}`, `model.depth=${depth}`, 'model.logStd=-1', 'grpo.advantageMode=dense', 'grpo.maxStaleness=1']);
    const lanes = await StaleCheckLanes.create(config, 'cpu');
    const runner = await PolicyRunner.create(config);
    try {
      assert.ok(lanes, 'two lanes at two threads per operator');
      assert.equal(await StaleCheckLanes.create(config, 'cuda').catch(() => 'refused'), undefined, 'no lanes on a GPU (one lane): the reference session as before');
      const params = initPolicyParams(policySpecOf(config), 3);
      const rand = testRandom(9);
      for (const groups of [[8, 8, 8, 8], [8, 8, 8], [1, 1, 1, 1, 1, 1, 1], [2, 6], [5, 3, 1, 4], [8]]) {
        const n = groups.reduce((a, b) => a + b, 0);
        const images = imagesOf(groups, n, P);
        // round 26: the reference session's mean over every row (its shared rows run the distinct images)
        const want = await runner.mean(params, images, n);
        const d = distinctRows(images, n);
        const parts = lanes.parts(params, d.images, d.count);
        assert.equal(parts.length, staleCheckParts(d.images, d.count).length);
        const got = new Float32Array(d.count * P);
        for (const p of parts) got.set(await p.mean, p.start * P);
        for (let i = 0; i < n; i++) {
          const k = d.source[i]!;
          assert.ok(bytes(got.subarray(k * P, (k + 1) * P)).equals(bytes(want.subarray(i * P, (i + 1) * P))), `groups ${groups}, row ${i}: the lanes' mean differs from the reference session's`);
        }

        // the check's values: round 26's recompute (every row's mean from the reference session, then the density)
        // against round 27's on one session and on the lanes, over every row, a consecutive tail, and scattered rows
        const actions = Float32Array.from({ length: n * P }, (_, i) => want[i]! + 0.3 * (rand() - 0.5));
        const logpOld = Float32Array.from({ length: n * P }, () => -0.5 + 0.1 * rand());
        const round26 = async (p: TensorMap, rows: number[]) =>
          gaussianRowLogp(gatherRows(actions, rows, P), await runner.mean(p, gatherRows(images, rows, P), rows.length), p.get(LOG_STD)!.data[0]!, gatherRows(logpOld, rows, P), rows.length);
        const b = { n, images, actions, logpOld };
        const oneSession = policyRecompute(b, LOG_STD, (p, im, m) => runner.mean(p, im, m));
        const inParts = policyRecompute(b, LOG_STD, (p, im, m) => lanes.parts(p, im, m));
        for (const rows of [[...Array(n).keys()], [...Array(n).keys()].slice(Math.floor(n / 3)), [...Array(n).keys()].filter((i) => i % 3 !== 1), [n - 1]]) {
          if (rows.length === 0) continue;
          const w = await round26(params, rows);
          for (const [name, g] of [['one session', await oneSession(params, rows)], ['lanes', await inParts(params, rows)]] as const) {
            assert.ok(bytes(Float64Array.from(g.logp)).equals(bytes(w.logp)), `groups ${groups}, rows ${rows}, ${name}: logp`);
            assert.ok(bytes(Float64Array.from(g.ratio)).equals(bytes(w.ratio)), `groups ${groups}, rows ${rows}, ${name}: ratio`);
          }
        }
      }
    } finally {
      await lanes?.release();
      await runner.release();
      setIntraOpThreads(before);
    }
  });
}

test('policyRecompute refuses mean parts that do not cover the rows in order, after every part settled', async () => {
  const n = 4;
  const P = P16;
  // four distinct images
  const b = { n, images: imagesOf([1, 1, 1, 1], 2), actions: new Float32Array(n * P), logpOld: new Float32Array(n * P) };
  const params = new Map([[LOG_STD, { data: Float32Array.of(-1), shape: [] }]]);
  let settled = 0;
  const mean = (rows: number) => new Promise<Float32Array>((r) => setTimeout(() => { settled++; r(new Float32Array(rows * P)); }, 5));
  const gap = policyRecompute(b, LOG_STD, () => [{ start: 0, rows: 1, mean: mean(1) }, { start: 2, rows: 2, mean: mean(2) }]);
  await assert.rejects(gap(params, [0, 1, 2, 3]), /a mean part \[2, \+2\) where image 1 of 4 comes next/);
  assert.equal(settled, 2);
  const short = policyRecompute(b, LOG_STD, () => [{ start: 0, rows: 3, mean: mean(3) }]);
  await assert.rejects(short(params, [0, 1, 2, 3]), /the mean parts cover 3 of 4 images/);
});

test('distinctRows: the distinct images of the rows and each row\'s; one image for several rows is run twice', () => {
  const images = imagesOf([3, 1, 2], 4);
  const d = distinctRows(images, 6);
  assert.equal(d.count, 3);
  assert.deepEqual([...d.source], [0, 0, 0, 1, 2, 2]);
  for (const [k, row] of [[0, 0], [1, 3], [2, 4]]) assert.ok(bytes(d.images.subarray(k * P16, (k + 1) * P16)).equals(bytes(images.subarray(row * P16, (row + 1) * P16))));
  const one = distinctRows(imagesOf([5], 4), 5);
  assert.equal(one.count, 2);
  assert.deepEqual([...one.source], [0, 0, 0, 0, 0]);
  assert.equal(distinctRows(imagesOf([1], 4), 1).count, 1);
  const all = imagesOf([1, 1, 1], 4);
  assert.equal(distinctRows(all, 3).images, all, 'every row its own image: no copy');
});
