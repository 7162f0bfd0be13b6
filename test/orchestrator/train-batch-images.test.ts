// A GRPO TrainBatch carries each group's image once (distinct_images + image_rows) instead of once per row; the
// learner expands it back to the [N,3,H,W] policy inputs the trainer sees, and refuses a bad index naming the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../lib/config/index.ts';
import { assembleGrpoBatch, type TrainableGroup } from '../../lib/grpo/batch.ts';
import { deserializeResponse, preserialize } from '../../lib/transport/grpc-common.ts';
import { encodeTensor, type OrchestratorMessage__Output, type TrainBatch__Output } from '../../lib/transport/index.ts';
import { BatchError, decodeTrainBatch, isEmptyGrpoBatch } from '../../learner/batch.ts';
import { grpoTrainBatch } from '../../orchestrator/messages.ts';

const S = 12;
const G = 3;
const pix = 3 * S * S;
const config = parseConfig({
  run: { id: 'tb-images', seed: 1 },
  data: { size: S, source: { kind: 'procedural', count: 8 } },
  model: { width: 4, depth: 1 },
  grpo: { groupSize: G, samplesPerBatch: 3, advantageMode: 'scalar' },
});

const filled = (len: number, f: (i: number) => number) => Float32Array.from({ length: len }, (_, i) => f(i));
function group(k: number, sampleId: string): TrainableGroup {
  return {
    sampleId,
    image: filled(pix, (i) => ((i * 7 + k * 13) % 101) / 101),
    actions: Array.from({ length: G }, (_, a) => filled(pix, (i) => ((i + a + k) % 17) / 17)),
    logps: [-1, -2, -3], versions: [0, 0, 0], rewards: [0.1, 0.2, 0.3],
    components: [{}, {}, {}] as TrainableGroup['components'],
    advantages: Float32Array.of(-1, 0, 1),
  };
}

/** The batch as the learner receives it: through the wire codec in use (the direct codec since round 29). */
function roundTrip(tb: ReturnType<typeof grpoTrainBatch>): TrainBatch__Output {
  const buf = (preserialize('response', { train_batch: tb }, 'train_batch', 64 << 20) as unknown as Record<symbol, Buffer>);
  const bytes = Object.getOwnPropertySymbols(buf).map((s) => buf[s]!)[0]!;
  return (deserializeResponse(bytes) as OrchestratorMessage__Output).train_batch!;
}

test('grpoTrainBatch sends each group image once; decodeTrainBatch gives back the per-row images', () => {
  // two groups of the same sample (as a batch may hold): still one image per group, split by group index 0
  const t = assembleGrpoBatch([group(0, 's0'), group(1, 's1'), group(2, 's1')], S, false);
  const tb = grpoTrainBatch(config, 1, t);
  assert.equal(tb.images, undefined);
  assert.deepEqual(tb.image_rows, [0, 0, 0, 1, 1, 1, 2, 2, 2]);
  const got = roundTrip(tb);
  assert.deepEqual(got.distinct_images!.shape.map(Number), [3, 3, S, S]);
  assert.equal(got.distinct_images!.data.length, 3 * pix * 4, 'K images on the wire, not N');
  const d = decodeTrainBatch(got, { height: S, width: S });
  assert.equal(d.n, 9);
  assert.deepEqual(d.images, t.images, 'the learner sees the same [N,3,H,W] images as before');
  assert.equal(d.nonFinite, undefined);
  assert.equal(isEmptyGrpoBatch(got), false);
});

test('rows are grouped by their bytes, not by the layout: two groups of one image share it, every row gets its own image back', () => {
  const same = group(1, 's1');
  const t = assembleGrpoBatch([group(0, 's0'), same, { ...same, image: same.image.slice() }], S, false);
  const tb = grpoTrainBatch(config, 1, t);
  assert.deepEqual(tb.image_rows, [0, 0, 0, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual(decodeTrainBatch(roundTrip(tb), { height: S, width: S }).images, t.images);
  // a layout the group indices would misread (every row its own group 0) still maps each row to its image
  const shuffled = { ...t, groupIndices: new Array(t.n).fill(0) };
  assert.deepEqual(decodeTrainBatch(roundTrip(grpoTrainBatch(config, 2, shuffled)), { height: S, width: S }).images, t.images);
});

test('decodeTrainBatch refuses bad distinct_images / image_rows naming the field, and names a non-finite value where it was sent', () => {
  const t = assembleGrpoBatch([group(0, 's0'), group(1, 's1')], S, false);
  const tb = grpoTrainBatch(config, 1, t);
  const bad = (patch: Partial<TrainBatch__Output>, re: RegExp) => assert.throws(
    () => decodeTrainBatch({ ...roundTrip(tb), ...patch } as TrainBatch__Output, { height: S, width: S }),
    (e: unknown) => e instanceof BatchError && e.code === 'bad_input' && re.test(e.message),
  );
  bad({ image_rows: [0, 0, 0, 1, 1, 2] }, /^train_batch\.image_rows\[5\]: 2 is out of range \(distinct_images has 2 images\)/);
  bad({ image_rows: [] }, /^train_batch\.image_rows: is empty/);
  bad({ image_rows: [0, 0, 0, 1, 1] }, /^train_batch\.image_rows: has 5 entries, train_batch\.actions has 6 samples/);
  // checked before n rows are allocated (round 22's review: 100,000 entries allocated 1.2 GB first, 2,000,000 threw a
  // RangeError the learner retried for ever)
  const before = process.memoryUsage().arrayBuffers;
  bad({ image_rows: new Array(2_000_000).fill(0) }, /^train_batch\.image_rows: has 2000000 entries, train_batch\.actions has 6 samples/);
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 << 20, 'image_rows allocated before it was checked');
  bad({ images: roundTrip(tb).distinct_images }, /^train_batch\.distinct_images: is set together with images/);
  bad({ distinct_images: null }, /^train_batch\.image_rows: has 6 entries but distinct_images is missing/);
  const nan = new Float32Array(2 * pix).fill(0.5);
  nan[pix + 4] = NaN;
  const withNaN = { ...roundTrip(tb), distinct_images: encodeTensor({ dtype: 'float32', shape: [2, 3, S, S], data: nan }, { allowNonFinite: true }) } as unknown as TrainBatch__Output;
  assert.equal(decodeTrainBatch(withNaN, { height: S, width: S }).nonFinite, `train_batch.distinct_images[flat ${pix + 4}] = NaN`);
});

test("decodeTrainBatch refuses a batch with more samples than the learner's max_batch, naming both", () => {
  const t = assembleGrpoBatch([group(0, 's0'), group(1, 's1')], S, false);
  const tb = roundTrip(grpoTrainBatch(config, 1, t));
  assert.equal(decodeTrainBatch(tb, { height: S, width: S, maxBatch: 6 }).n, 6);
  assert.throws(
    () => decodeTrainBatch(tb, { height: S, width: S, maxBatch: 5 }),
    (e: unknown) => e instanceof BatchError && e.code === 'bad_input' && /^train_batch\.actions: has 6 samples, more than this learner's max_batch 5 \(start it with --max-batch 6 or more/.test(e.message),
  );
});
