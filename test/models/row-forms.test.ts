// The GRPO graph's two forms (lib/models/row-forms.ts): a batch that repeats images runs the shared-rows form, a
// batch whose rows are all distinct the plain one, and either gives the plain graph's bytes (on each of the batch's
// shards, lib/models/batch-shards.ts: the trainer's outputs are the plain graph's on each shard, combined).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../lib/config/index.ts';
import { GraphSession } from '../../lib/graph/runtime.ts';
import { grpoModel, policySpecOf } from '../../lib/models/bundle.ts';
import { initPolicyParams } from '../../lib/models/policy.ts';
import { PolicyTrainer, type GrpoInputs } from '../../lib/models/trainer.ts';
import { rowFormOf } from '../../lib/models/row-forms.ts';
import { batchShards, combineShards } from '../../lib/models/batch-shards.ts';
import { sliceFeeds } from '../../lib/models/lanes.ts';
import { paramFeeds, scalarFeed } from '../../lib/models/feeds.ts';
import { ssimMapSize } from '../../lib/models/ssim.ts';
import { standardNormal } from '../../lib/data/random.ts';

const SIZE = 32;
const PX = 3 * SIZE * SIZE;
const same = (a: Float32Array, b: Float32Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** n rows; row i shows image imageOf(i). */
function images(n: number, imageOf: (i: number) => number): Float32Array {
  const out = new Float32Array(n * PX);
  for (let i = 0; i < n; i++) out.set(Float32Array.from(standardNormal(PX, 10 + imageOf(i)), (v) => 0.5 + 0.1 * v), i * PX);
  return out;
}

test('rowFormOf: shared for repeated images (with their row feeds), plain when every row is its own', () => {
  assert.equal(rowFormOf(images(8, (i) => i >> 2), 8).form, 'shared');
  assert.deepEqual(Object.keys(rowFormOf(images(8, (i) => i >> 2), 8).feeds).length, 2);
  assert.equal(rowFormOf(images(8, (i) => i), 8).form, 'plain');
  assert.deepEqual(rowFormOf(images(8, (i) => i), 8).feeds, {});
  // one image twice is computed as two rows (repeatedRows never gives one row for several): nothing to share
  assert.equal(rowFormOf(images(2, () => 0), 2).form, 'plain');
  assert.equal(rowFormOf(images(1, () => 0), 1).form, 'plain');
});

for (const mode of ['scalar', 'dense'] as const) {
  test(`PolicyTrainer (${mode}): grouped batches run the shared form, distinct ones the plain form, both with the plain graph's bytes`, async () => {
    const config = loadConfig(undefined, [`data.size=${SIZE}`, `grpo.advantageMode=${mode}`, 'model.width=8', 'model.depth=2']);
    const params = initPolicyParams(policySpecOf(config), 0);
    for (const p of params.values()) if (p.shape.length) p.data.set(standardNormal(p.data.length, 3).map((v) => v * 0.05));
    const trainer = PolicyTrainer.create(config, params);
    const plain = await GraphSession.create(grpoModel(config));
    const n = 8;
    const m = ssimMapSize(SIZE);
    const batchOf = (imgs: Float32Array): GrpoInputs => ({
      n, images: imgs,
      actions: Float32Array.from(standardNormal(n * PX, 5), (v) => 0.5 + 0.1 * v),
      logpOld: mode === 'dense' ? Float32Array.from(standardNormal(n * PX, 6)) : Float32Array.from(standardNormal(n, 6)),
      advantages: Float32Array.from(standardNormal(n, 7)),
      ...(mode === 'dense' ? { advantageMap: Float32Array.from(standardNormal(n * 3 * m * m, 8)) } : {}),
      refMean: Float32Array.from(standardNormal(n * PX, 9), (v) => 0.5 + 0.1 * v),
    });
    const hyper = { clipLow: config.grpo.clipLow, clipHigh: config.grpo.clipHigh, beta: config.grpo.beta };
    const plainOf = async (b: GrpoInputs) => {
      const dims = [n, 3, SIZE, SIZE];
      const rows = {
        image: { data: b.images, dims }, action: { data: b.actions, dims },
        logp_old: { data: b.logpOld, dims: mode === 'dense' ? dims : [n] }, advantage: { data: b.advantages, dims: [n] },
        ref_mean: { data: b.refMean, dims },
        ...(b.advantageMap ? { advantage_map: { data: b.advantageMap, dims: [n, 3, m, m] } } : {}),
      };
      const common = { ...paramFeeds(params), clip_low: scalarFeed(hyper.clipLow), clip_high: scalarFeed(hyper.clipHigh), dual_clip: scalarFeed(3), beta: scalarFeed(hyper.beta) };
      const shards = batchShards(n);
      const outs = [];
      for (const [start, rowsOf] of shards) outs.push(await plain.run({ ...common, ...sliceFeeds(rows, n, start, rowsOf) }));
      return combineShards(outs, shards, n);
    };
    try {
      const grouped = batchOf(images(n, (i) => i >> 2));
      const want1 = await plainOf(grouped);
      const got1 = await trainer.grpoForward(grouped, hyper);
      assert.deepEqual(trainer.grpo.created(), ['shared']);
      const distinct = batchOf(images(n, (i) => i));
      const want2 = await plainOf(distinct);
      const got2 = await trainer.grpoForward(distinct, hyper);
      assert.deepEqual(trainer.grpo.created(), ['plain', 'shared']);
      for (const [want, got, what] of [[want1, got1, 'grouped'], [want2, got2, 'distinct']] as const) {
        assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), `${what}: outputs`);
        for (const k of Object.keys(want)) assert.ok(same(want[k]!.data, got[k]!.data), `${what}: output ${k} differs from the plain graph's`);
      }
    } finally {
      await trainer.release();
      await plain.release();
    }
  });
}
