// The GRPO graph on shards of the batch (lib/models/batch-shards.ts): the shards depend on the batch alone; their
// outputs combine as a float64 reference computes them; the trainer's outputs are the same bytes whether the shards
// run at once on two lanes or one after the other on one (--threads 1), and within float rounding of the whole
// batch's run of the same graph.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../lib/config/index.ts';
import { GraphSession, intraOpThreads, setIntraOpThreads, type Fetches } from '../../lib/graph/runtime.ts';
import { grpoModel, policySpecOf } from '../../lib/models/bundle.ts';
import { initPolicyParams } from '../../lib/models/policy.ts';
import { PolicyTrainer, type GrpoInputs } from '../../lib/models/trainer.ts';
import { batchShards, combineShards, settleAll, shardLanes } from '../../lib/models/batch-shards.ts';
import { grpoHyperFeeds, paramFeeds, scalarFeed } from '../../lib/models/feeds.ts';
import { ssimMapSize } from '../../lib/models/ssim.ts';
import { grpoHyper } from '../../lib/grpo/algorithm.ts';
import { standardNormal } from '../../lib/data/random.ts';

const SIZE = 32;
const PX = 3 * SIZE * SIZE;
const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

test('batchShards: two halves (the first one row longer at odd n), one shard for one row; bad sizes refused', () => {
  assert.deepEqual(batchShards(32), [[0, 16], [16, 16]]);
  assert.deepEqual(batchShards(7), [[0, 4], [4, 3]]);
  assert.deepEqual(batchShards(2), [[0, 1], [1, 1]]);
  assert.deepEqual(batchShards(1), [[0, 1]]);
  for (const bad of [0, -2, 2.5, NaN]) assert.throws(() => batchShards(bad), /batch shards: .* integer number of rows >= 1/);
  assert.equal(shardLanes('cpu', 1), 1);
  assert.equal(shardLanes('cpu', 2), 2);
  assert.equal(shardLanes('cpu', 16), 2);
  assert.equal(shardLanes('cuda', 2), 1);
});

test('combineShards: per-row outputs concatenated, the rest the rows-weighted mean (float64 reference), shard 0 first', () => {
  for (const n of [8, 7]) {
    const shards = batchShards(n);
    const outs: Fetches[] = shards.map(([, m], s) => ({
      loss: { data: Float32Array.of(0.1 + s), dims: [] },
      'grad.w': { data: Float32Array.from(standardNormal(50, 20 + s), (v) => v * 1e3), dims: [5, 10] },
      logp: { data: Float32Array.from(standardNormal(m, 30 + s)), dims: [m] },
      ratio: { data: Float32Array.from(standardNormal(m, 40 + s)), dims: [m] },
    }));
    const got = combineShards(outs, shards, n);
    assert.deepEqual(got.logp!.dims, [n]);
    assert.deepEqual([...got.logp!.data], [...outs[0]!.logp!.data, ...outs[1]!.logp!.data]);
    assert.deepEqual([...got.ratio!.data], [...outs[0]!.ratio!.data, ...outs[1]!.ratio!.data]);
    assert.deepEqual(got['grad.w']!.dims, [5, 10]);
    for (const name of ['loss', 'grad.w']) {
      got[name]!.data.forEach((v, i) => {
        // the whole batch's mean from the shards' means: sum of (mean_s * rows_s) / n, in float64
        const want = shards.reduce((a, [, m], s) => a + outs[s]![name]!.data[i]! * m, 0) / n;
        // three float32 roundings (two products, one sum), each within 2^-24 of the terms' magnitudes
        const size = shards.reduce((a, [, m], s) => a + Math.abs(outs[s]![name]!.data[i]! * m), 0) / n;
        assert.ok(Math.abs(v - want) <= 3 * 2 ** -24 * size, `n ${n}, ${name}[${i}]: ${v} vs ${want}`);
      });
    }
    // even n: exactly (a + b) / 2 in float32
    if (n % 2 === 0) got['grad.w']!.data.forEach((v, i) => assert.equal(v, Math.fround(Math.fround(outs[0]!['grad.w']!.data[i]! + outs[1]!['grad.w']!.data[i]!) / 2)));
  }
  assert.throws(() => combineShards([], [], 2), /0 shard outputs for 0 shards/);
  assert.throws(() => combineShards([{ loss: { data: Float32Array.of(1), dims: [] } }, {}], batchShards(2), 2), /shard 1 has no output loss/);
});

/** The same GRPO batch for every trainer: `groups` groups of `g` rows sharing an image. */
function batchOf(mode: 'scalar' | 'dense', groups: number, g: number, identity: boolean): GrpoInputs {
  const n = groups * g;
  const m = ssimMapSize(SIZE);
  const images = new Float32Array(n * PX);
  for (let i = 0; i < n; i++) images.set(Float32Array.from(standardNormal(PX, 10 + Math.floor(i / g)), (v) => 0.5 + 0.1 * v), i * PX);
  const firstOfGroup = (i: number) => (i % g === 0 ? 1 : 0);
  return {
    n, images,
    actions: Float32Array.from(standardNormal(n * PX, 5), (v) => 0.5 + 0.1 * v),
    logpOld: mode === 'dense' ? Float32Array.from(standardNormal(n * PX, 6), (v) => v - 1) : Float32Array.from(standardNormal(n, 6), (v) => v - 1),
    advantages: Float32Array.from(standardNormal(n, 7)),
    ...(mode === 'dense' ? { advantageMap: Float32Array.from(standardNormal(n * 3 * m * m, 8)) } : {}),
    ...(identity ? {
      identityAdvantages: Float32Array.from(standardNormal(n, 11), (v, i) => v * firstOfGroup(i)),
      ...(mode === 'dense' ? { identityAdvantageMap: Float32Array.from(standardNormal(n * 3 * m * m, 12), (v, i) => v * firstOfGroup(Math.floor(i / (3 * m * m)))) } : {}),
    } : {}),
    refMean: Float32Array.from(standardNormal(n * PX, 9), (v) => 0.5 + 0.1 * v),
  };
}

for (const mode of ['scalar', 'dense'] as const) {
  test(`PolicyTrainer (${mode}): the shards at once on two lanes give the bytes of one after the other on one lane, and the whole batch's outputs within rounding`, async () => {
    const identity = mode === 'dense'; // the identity member's term once, in the mode with the most inputs
    const config = loadConfig(undefined, [`data.size=${SIZE}`, `grpo.advantageMode=${mode}`, 'model.width=8', 'model.depth=2', ...(identity ? ['grpo.identityAnchor=0.5'] : [])]);
    const params = initPolicyParams(policySpecOf(config), 0);
    for (const p of params.values()) if (p.shape.length) p.data.set(standardNormal(p.data.length, 3).map((v) => v * 0.05));
    const hyper = grpoHyper(config);
    const before = intraOpThreads();
    setIntraOpThreads(1);
    const serial = PolicyTrainer.create(config, params);
    setIntraOpThreads(2);
    const parallel = PolicyTrainer.create(config, params);
    setIntraOpThreads(before);
    const whole = await GraphSession.create(grpoModel(config), { intraOpThreads: 1 });
    assert.equal(serial.grpo.laneCount, 1);
    assert.equal(parallel.grpo.laneCount, 2);
    try {
      // grouped (the shared form on each shard), an odd batch (unequal shards, a group split across them), distinct rows
      for (const [groups, g] of [[4, 4], [3, 3], [6, 1]] as const) {
        const b = batchOf(mode, groups, g, identity);
        const one = await serial.grpoForward(b, hyper);
        const two = await parallel.grpoForward(b, hyper);
        assert.deepEqual(Object.keys(two).sort(), Object.keys(one).sort());
        for (const k of Object.keys(one)) assert.ok(bytes(one[k]!.data).equals(bytes(two[k]!.data)), `${groups}x${g}: output ${k} differs between two lanes and one`);
        // the whole batch in one run of the plain graph: the same quantities, summed in another order
        const dims = [b.n, 3, SIZE, SIZE];
        const mapDims = [b.n, 3, ssimMapSize(SIZE), ssimMapSize(SIZE)];
        const ref = await whole.run({
          ...paramFeeds(params), ...grpoHyperFeeds(hyper),
          image: { data: b.images, dims }, action: { data: b.actions, dims }, ref_mean: { data: b.refMean, dims },
          logp_old: { data: b.logpOld, dims: mode === 'dense' ? dims : [b.n] }, advantage: { data: b.advantages, dims: [b.n] },
          ...(b.advantageMap ? { advantage_map: { data: b.advantageMap, dims: mapDims } } : {}),
          ...(identity ? { identity_advantage: { data: b.identityAdvantages!, dims: [b.n] }, identity_advantage_map: { data: b.identityAdvantageMap!, dims: mapDims }, identity_weight: scalarFeed(0.5) } : {}),
        });
        assert.deepEqual(Object.keys(ref).sort(), Object.keys(one).sort());
        let gradients = 0;
        for (const k of Object.keys(ref)) {
          const want = ref[k]!.data;
          const got = one[k]!.data;
          assert.deepEqual(one[k]!.dims, ref[k]!.dims, `${k}: dims`);
          const scale = want.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
          want.forEach((v, i) => assert.ok(Math.abs(got[i]! - v) <= 1e-5 * scale + 1e-7, `${groups}x${g}: ${k}[${i}] ${got[i]} vs the whole batch's ${v} (scale ${scale})`));
          if (k.startsWith('grad.')) gradients++;
        }
        assert.ok(gradients > 5 && ['loss', 'kl', 'clip_fraction', 'logp', 'ratio'].every((k) => k in one));
        if (identity) assert.ok('identity_loss' in one);
      }
    } finally {
      await serial.release();
      await parallel.release();
      await whole.release();
    }
  });
}

// review26d F6 (round 26): ShardedForms.run and prepare used Promise.all, which rejects at lane 0's error while lane 1
// may still be inside onnxruntime (a CLI calling process.exit then aborts with 134). settleAll waits for both.
test('settleAll: a lane that throws at once rejects only after the other lane has settled, with the first error in lane order', async () => {
  let secondSettled = false;
  const first = Promise.reject(new Error('lane 0 failed'));
  const second = new Promise<number>((resolve) => setTimeout(() => {
    secondSettled = true;
    resolve(2);
  }, 50));
  await assert.rejects(settleAll([first, second]), (e: Error) => {
    assert.equal(e.message, 'lane 0 failed');
    assert.equal(secondSettled, true, 'the other lane settled before the rejection');
    return true;
  });
  // both failing: lane 0's error, after lane 1's
  await assert.rejects(settleAll([new Promise((_, reject) => setTimeout(() => reject(new Error('lane 0')), 30)), Promise.reject(new Error('lane 1'))]), /lane 0/);
  assert.deepEqual(await settleAll([Promise.resolve(1), Promise.resolve(2)]), [1, 2]);
});
