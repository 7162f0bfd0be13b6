// decodeTrainBatch's non-finite check names the first NaN / Infinity of each tensor, in field order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeTrainBatch } from '../../learner/batch.ts';
import { encodeTensor, type TrainBatch__Output } from '../../lib/transport/index.ts';

const S = 11;
const n = 2;
const pix = 3 * S * S;
const t = (data: Float32Array, shape: number[]) => encodeTensor({ dtype: 'float32', shape, data }, { allowNonFinite: true });

function batch(poke?: { field: 'images' | 'actions' | 'logp_old' | 'advantages'; at: number; value: number }) {
  const f = { images: new Float32Array(n * pix).fill(0.5), actions: new Float32Array(n * pix).fill(0.25), logp_old: new Float32Array(n).fill(-1), advantages: new Float32Array([1, -1]) };
  if (poke) f[poke.field][poke.at] = poke.value;
  return {
    batch_id: 'b', batch_seq: 3, kind: 'GRPO', lease_ms: 1000,
    images: t(f.images, [n, 3, S, S]), actions: t(f.actions, [n, 3, S, S]), logp_old: t(f.logp_old, [n]), advantages: t(f.advantages, [n]),
    behaviour_versions: [0, 0], sample_ids: ['a', 'a'], group_indices: [0, 1],
  } as unknown as TrainBatch__Output;
}

test('decodeTrainBatch: nonFinite names the first NaN or Infinity (the reference: findIndex of !Number.isFinite)', () => {
  assert.equal(decodeTrainBatch(batch(), { height: S, width: S }).nonFinite, undefined);
  for (const value of [NaN, Infinity, -Infinity]) {
    for (const [field, at] of [['images', 0], ['images', n * pix - 1], ['actions', 17], ['logp_old', 1], ['advantages', 0]] as const) {
      const got = decodeTrainBatch(batch({ field, at, value }), { height: S, width: S }).nonFinite;
      assert.equal(got, `train_batch.${field}[flat ${at}] = ${value}`);
    }
  }
  // two bad tensors: the first in field order wins; two bad values: the first index
  const b = batch({ field: 'actions', at: 5, value: NaN });
  const images = new Float32Array(n * pix).fill(0.5);
  images[9] = Infinity;
  images[3] = -Infinity;
  b.images = t(images, [n, 3, S, S]) as unknown as TrainBatch__Output['images'];
  assert.equal(decodeTrainBatch(b, { height: S, width: S }).nonFinite, 'train_batch.images[flat 3] = -Infinity');
});
