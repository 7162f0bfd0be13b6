// The convolution weight gradient with the batch in chunks (lib/graph/conv-gradients.ts, CHUNKS): every output of the
// GRPO graph is the whole-batch graph's, bit for bit (the checkpoints of a seed do not change), with batches that
// the chunks do not divide, fewer rows than chunks (empty chunks), both row forms, 1 and 2 onnxruntime threads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphSession, setIntraOpThreads, type Feeds, type Fetches } from '../../lib/graph/runtime.ts';
import { serialize } from '../../lib/graph/onnx.ts';
import { CHUNKS } from '../../lib/graph/conv-gradients.ts';
import { buildGrpoGraph } from '../../lib/models/graphs.ts';
import { initPolicyParams, type PolicySpec } from '../../lib/models/policy.ts';
import { paramFeeds, sharedRowFeeds } from '../../lib/models/feeds.ts';
import { standardNormal } from '../../lib/data/random.ts';

const SIZE = 32;
const R = { height: SIZE, width: SIZE };
const PX = 3 * SIZE * SIZE;
const same = (a: Float32Array, b: Float32Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

function assertSameFetches(whole: Fetches, chunked: Fetches, what: string): void {
  assert.deepEqual(Object.keys(chunked).sort(), Object.keys(whole).sort(), `${what}: outputs`);
  for (const k of Object.keys(whole)) assert.ok(same(whole[k]!.data, chunked[k]!.data), `${what}: output ${k} differs from the whole batch's`);
}

/** The GRPO graph with the weight gradients' batch in `count` chunks (1: whole), chunking every layer it may. */
function grpoGraph(spec: PolicySpec, mode: 'scalar' | 'dense', count: number, sharedRows: boolean) {
  const saved = { ...CHUNKS };
  Object.assign(CHUNKS, { count, minBytes: 0 });
  try {
    return buildGrpoGraph(spec, R, mode, false, { sharedRows });
  } finally {
    Object.assign(CHUNKS, saved);
  }
}

for (const arch of ['resnet', 'unet'] as const) {
  test(`${arch}: the GRPO graph's outputs with the weight gradients in chunks are the whole batch's bytes`, async () => {
    const spec: PolicySpec = { arch, width: 16, depth: 4, logStd: -3, learnLogStd: true };
    const params = initPolicyParams(spec, 0);
    for (const p of params.values()) if (p.shape.length) p.data.set(standardNormal(p.data.length, 3).map((v) => v * 0.05));
    try {
      for (const mode of ['scalar', 'dense'] as const) {
        for (const sharedRows of [false, true]) {
          const graphs = [grpoGraph(spec, mode, 1, sharedRows), grpoGraph(spec, mode, 4, sharedRows), grpoGraph(spec, mode, 16, sharedRows)];
          const chunkSlices = graphs.map((g) => g.nodes.filter((n) => n.op === 'Slice' && n.outputs[0]!.shape[0]!.toString().startsWith('chunk')).length);
          assert.equal(chunkSlices[0], 0, 'one chunk: the whole batch');
          assert.ok(chunkSlices[1]! >= 2 * 4 * 4 && chunkSlices[2] === 4 * chunkSlices[1]!, `chunk slices ${chunkSlices}`);
          for (const threads of [1, 2]) {
            setIntraOpThreads(threads);
            const sessions = await Promise.all(graphs.map((g) => GraphSession.create(serialize(g))));
            // 14 rows: 4 chunks of 4, 4, 4, 2; 16 chunks of one and two empty. 3 rows: more chunks than rows.
            for (const n of [14, 3]) {
              const dims = [n, 3, SIZE, SIZE];
              const images = Float32Array.from(standardNormal(n * PX, 10 + n), (v) => 0.5 + 0.1 * v);
              const action = Float32Array.from(standardNormal(n * PX, 20 + n), (v, i) => images[i]! + 0.05 * v);
              const feeds: Feeds = {
                ...paramFeeds(params),
                image: { data: images, dims },
                action: { data: action, dims },
                logp_old: mode === 'dense' ? { data: standardNormal(n * PX, 7), dims } : { data: standardNormal(n, 7), dims: [n] },
                advantage: { data: standardNormal(n, 4), dims: [n] },
                ref_mean: { data: Float32Array.from(images, (v) => v + 0.01), dims },
                clip_low: { data: Float32Array.of(0.2), dims: [] },
                clip_high: { data: Float32Array.of(0.28), dims: [] },
                dual_clip: { data: Float32Array.of(3), dims: [] },
                beta: { data: Float32Array.of(0.01), dims: [] },
                ...(mode === 'dense' ? { advantage_map: { data: standardNormal(n * 3 * (SIZE - 10) ** 2, 5), dims: [n, 3, SIZE - 10, SIZE - 10] } } : {}),
                ...(sharedRows ? sharedRowFeeds(images, n) : {}),
              };
              const [whole, ...chunked] = await Promise.all(sessions.map((s) => s.run(feeds)));
              chunked.forEach((c, i) => assertSameFetches(whole!, c, `${mode}, ${sharedRows ? 'shared' : 'plain'} rows, ${threads} threads, n ${n}, ${[4, 16][i]} chunks`));
            }
            for (const s of sessions) await s.release();
          }
        }
      }
    } finally {
      setIntraOpThreads(0);
    }
  });
}
