// The policy network once per distinct image (lib/graph/shared-rows.ts): a GRPO batch repeats each image G times,
// and the rewritten policy and GRPO graphs must give every output the bytes of the plain graphs (the checkpoints
// of a seed do not change), with 1 and 2 onnxruntime threads; ops that mix rows are left on all rows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphSession, setIntraOpThreads, type Feeds, type Fetches } from '../../lib/graph/runtime.ts';
import { Graph } from '../../lib/graph/graph.ts';
import { mul, reduceSum, reshape } from '../../lib/graph/ops.ts';
import { serialize } from '../../lib/graph/onnx.ts';
import { repeatedRows, shareRepeatedRows } from '../../lib/graph/shared-rows.ts';
import { buildGrpoGraph, buildPolicyGraph } from '../../lib/models/graphs.ts';
import { initPolicyParams, type PolicySpec } from '../../lib/models/policy.ts';
import { paramFeeds, sharedRowFeeds } from '../../lib/models/feeds.ts';
import { standardNormal } from '../../lib/data/random.ts';

const SIZE = 32;
const R = { height: SIZE, width: SIZE };
const PX = 3 * SIZE * SIZE;
// 3 groups of 4 copies, a lone image, then a copy of the first image that is not next to it
const ROWS = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 0];
const N = ROWS.length;

const same = (a: Float32Array, b: Float32Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

function assertSameFetches(plain: Fetches, shared: Fetches, what: string): void {
  assert.deepEqual(Object.keys(shared).sort(), Object.keys(plain).sort(), `${what}: outputs`);
  for (const k of Object.keys(plain)) assert.ok(same(plain[k]!.data, shared[k]!.data), `${what}: output ${k} differs from the plain graph's`);
}

test('repeatedRows: runs of byte-equal consecutive rows, a repeat that is not a neighbour computed again, bad sizes refused by name', () => {
  const distinct = [0, 1, 2, 3].map((k) => Float32Array.from(standardNormal(PX, 10 + k)));
  const images = new Float32Array(N * PX);
  ROWS.forEach((k, i) => images.set(distinct[k]!, i * PX));
  const { distinct: rows, source } = repeatedRows(images, N);
  assert.deepEqual([...rows], [0, 4, 8, 12, 13]);
  assert.deepEqual([...source], [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 4]);
  // one image in several rows is computed twice (onnxruntime threads a batch of one differently: below)
  const group = new Float32Array(8 * PX);
  for (let i = 0; i < 8; i++) group.set(distinct[0]!, i * PX);
  assert.deepEqual([...repeatedRows(group, 8).distinct], [0, 1]);
  assert.deepEqual([...repeatedRows(group, 8).source], [0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...repeatedRows(distinct[0]!, 1).distinct], [0]);
  // -0 and 0 differ in their bytes (and could differ downstream): not merged
  assert.deepEqual([...repeatedRows(Float32Array.of(0, -0), 2).distinct], [0, 1]);
  assert.throws(() => repeatedRows(new Float32Array(10), 3, 'image'), /image: 10 values do not split into n = 3 rows/);
});

// a GRPO batch's rows (groups, a lone image, a repeat that is not a neighbour), and one group alone (a rollout
// call at maxStaleness 0: onnxruntime threads a batch of one image differently, repeatedRows computes two)
const PATTERNS = [ROWS, Array.from({ length: 8 }, () => 0)];

for (const arch of ['resnet', 'unet'] as const) {
  for (const mode of ['scalar', 'dense'] as const) {
    test(`${arch}, ${mode}: the policy and GRPO graphs with shared rows give the plain graphs' bytes (1 and 2 threads)`, async () => {
      const spec: PolicySpec = { arch, width: 16, depth: 4, logStd: -3, learnLogStd: true };
      const params = initPolicyParams(spec, 0);
      // weights away from their initial values, so that every layer shapes the output
      for (const p of params.values()) if (p.shape.length) p.data.set(standardNormal(p.data.length, 3).map((v) => v * 0.05));
      const distinct = [0, 1, 2, 3].map((k) => Float32Array.from(standardNormal(PX, 10 + k), (v) => 0.5 + 0.1 * v));
      const grpoPlain = buildGrpoGraph(spec, R, mode, true);
      const grpoShared = buildGrpoGraph(spec, R, mode, true, { sharedRows: true });
      // every forward Conv of the network moved to the distinct rows (the backward's stay on all rows)
      const forwardConvs = (g: Graph): number => g.nodes.filter((n) => n.op === 'Conv' && n.inputs.length === 3 && n.inputs[1]!.name.startsWith('param.')).length;
      const onDistinct = (g: Graph): number => g.nodes.filter((n) => n.op === 'Conv' && n.outputs[0]!.shape[0] === 'M').length;
      assert.ok(onDistinct(grpoShared) >= forwardConvs(grpoPlain) && forwardConvs(grpoPlain) >= 6, `${onDistinct(grpoShared)} Convs on the distinct rows, ${forwardConvs(grpoPlain)} forward Convs`);
      try {
        for (const threads of [1, 2]) {
          setIntraOpThreads(threads);
          const sessions = await Promise.all([buildPolicyGraph(spec, R), buildPolicyGraph(spec, R, undefined, { sharedRows: true }), grpoPlain, grpoShared]
            .map((g) => GraphSession.create(serialize(g))));
          const [policy, policyShared, grpo, grpoS] = sessions as [GraphSession, GraphSession, GraphSession, GraphSession];
          for (const rows of PATTERNS) {
            const n = rows.length;
            const what = `${threads} threads, rows [${rows}]`;
            const images = new Float32Array(n * PX);
            rows.forEach((k, i) => images.set(distinct[k]!, i * PX));
            const dims = [n, 3, SIZE, SIZE];
            const image = { data: images, dims };
            const rowFeeds = sharedRowFeeds(images, n);
            const policyFeeds: Feeds = { ...paramFeeds(params), image, noise: { data: standardNormal(n * PX, 2), dims } };
            const roll = await policy.run(policyFeeds);
            assertSameFetches(roll, await policyShared.run({ ...policyFeeds, ...rowFeeds }), `${what}, policy`);
            const mapDims = [n, 3, SIZE - 10, SIZE - 10];
            const feeds: Feeds = {
              ...paramFeeds(params),
              image,
              action: { data: roll.action!.data, dims },
              logp_old: mode === 'dense' ? { data: roll.logp_map!.data, dims } : { data: roll.logp!.data, dims: [n] },
              advantage: { data: standardNormal(n, 4), dims: [n] },
              ref_mean: { data: Float32Array.from(roll.mean!.data, (v) => v + 0.01), dims },
              clip_low: { data: Float32Array.of(0.2), dims: [] },
              clip_high: { data: Float32Array.of(0.28), dims: [] },
              dual_clip: { data: Float32Array.of(3), dims: [] },
              beta: { data: Float32Array.of(0.01), dims: [] },
              identity_advantage: { data: Float32Array.from(rows, (k, i) => (i % 4 === 0 ? 0.3 * (k + 1) : 0)), dims: [n] },
              identity_weight: { data: Float32Array.of(0.5), dims: [] },
              ...(mode === 'dense' ? {
                advantage_map: { data: standardNormal(n * 3 * (SIZE - 10) ** 2, 5), dims: mapDims },
                identity_advantage_map: { data: standardNormal(n * 3 * (SIZE - 10) ** 2, 6), dims: mapDims },
              } : {}),
            };
            assertSameFetches(await grpo.run(feeds), await grpoS.run({ ...feeds, ...rowFeeds }), `${what}, GRPO`);
          }
          for (const s of sessions) await s.release();
        }
      } finally {
        setIntraOpThreads(0);
      }
    });
  }
}

test('shareRepeatedRows: an op that mixes rows (a sum over the batch, a reshape across it) reads every row, so the result is the plain graph\'s', async () => {
  const build = (shared: boolean): Graph => {
    const g = new Graph();
    const x = g.input('x', ['N', 3]);
    const y = mul(x, 2); // row-wise: moves
    g.output('per_row', y);
    g.output('sum', reduceSum(y, [0])); // over the rows: must see N rows, not M
    g.output('flat', reshape(y, ['NC'])); // across the rows
    if (shared) assert.equal(shareRepeatedRows(g, x), 1);
    return g;
  };
  const x = Float32Array.of(1, 2, 3, 1, 2, 3, 4, 5, 6);
  const [plain, shared] = await Promise.all([build(false), build(true)].map((g) => GraphSession.create(serialize(g))));
  const feeds: Feeds = { x: { data: x, dims: [3, 3] } };
  const want = await plain!.run(feeds);
  assert.deepEqual([...want.sum!.data], [12, 18, 24]);
  assertSameFetches(want, await shared!.run({ ...feeds, ...sharedRowFeeds(x, 3) }), 'rows mixed');
  for (const s of [plain!, shared!]) await s.release();
});
