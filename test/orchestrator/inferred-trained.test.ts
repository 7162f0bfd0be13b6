// inferOutcomes: the outcome of batches acknowledged without a TrainResult, from the learner's checkpoint records,
// where records are missing or contradict each other (the real-component cases: test/reliability/inferred-trained.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inferOutcomes, recordFromMeta, type CheckpointRecord, type InferOptions } from '../../orchestrator/inferred-trained.ts';

/** Records [version, lastBatchSeq, step]; versions not listed are not in the store. */
const store = (...rs: Array<[number, number, number]>): InferOptions['record'] => {
  const m = new Map<number, CheckpointRecord>(rs.map(([version, lastBatchSeq, step]) => [version, { version, lastBatchSeq, step }]));
  return async (v) => m.get(v) ?? null;
};
const brief = async (o: InferOptions) => (await inferOutcomes(o)).map((x) => [x.seq, x.kind, x.applied, x.version]);

test('every record present: non-finite gaps, applied and empty batches, each at its version', async () => {
  // v1 <- batch 1 (step 1), 2 skipped, v2 <- batch 3 (step 2), v3 <- batch 4 empty (step 2), 5 and 6 skipped
  const record = store([0, 0, 0], [1, 1, 1], [2, 3, 2], [3, 4, 2]);
  assert.deepEqual(await brief({ first: 1, last: 6, lastVersion: 3, sftSteps: 2, record }), [
    [1, 'applied', true, 1], [2, 'non_finite', false, 1], [3, 'applied', true, 2], [4, 'empty', false, 3], [5, 'non_finite', false, 3], [6, 'non_finite', false, 3],
  ]);
  // a range that starts and ends inside
  assert.deepEqual(await brief({ first: 2, last: 4, lastVersion: 3, sftSteps: 2, record }), [[2, 'non_finite', false, 1], [3, 'applied', true, 2], [4, 'empty', false, 3]]);
});

test('records pruned: an SFT batch is applied (never empty); a GRPO batch\'s trained-or-empty and older versions are unknown', async () => {
  const record = store([2, 3, 2], [3, 4, 3]);
  assert.deepEqual(await brief({ first: 1, last: 4, lastVersion: 3, sftSteps: 3, record }), [
    [1, 'unknown', null, null], [2, 'unknown', null, null], [3, 'applied', true, 2], [4, 'applied', true, 3],
  ]);
  const grpo = store([3, 4, 3]);
  const [o] = await inferOutcomes({ first: 4, last: 4, lastVersion: 3, sftSteps: 3, record: grpo });
  assert.deepEqual([o!.kind, o!.applied, o!.version], ['unknown', null, 3]);
  assert.match(o!.evidence, /whether it was trained or empty is not recorded \(checkpoint v2 is not in the store\)/);
});

test('no records: the stored version before the range settles "none moved the version" and "each did", nothing else', async () => {
  const none = store();
  assert.deepEqual(await brief({ first: 3, last: 4, lastVersion: 2, versionBefore: 2, sftSteps: 5, record: none }), [[3, 'non_finite', false, 2], [4, 'non_finite', false, 2]]);
  assert.deepEqual(await brief({ first: 3, last: 6, lastVersion: 6, versionBefore: 2, sftSteps: 5, record: none }), [
    [3, 'applied', true, 3], [4, 'applied', true, 4], [5, 'applied', true, 5], [6, 'unknown', null, 6],
  ]);
  assert.deepEqual(await brief({ first: 3, last: 4, lastVersion: 3, versionBefore: 2, sftSteps: 5, record: none }), [[3, 'unknown', null, null], [4, 'unknown', null, null]]);
  assert.deepEqual(await brief({ first: 3, last: 4, lastVersion: 3, sftSteps: 5, record: none }), [[3, 'unknown', null, null], [4, 'unknown', null, null]]);
});

test('records that contradict the acknowledgement or each other are not believed', async () => {
  // v3 says it holds batch 9, past the acknowledged batch 4
  assert.deepEqual(await brief({ first: 3, last: 4, lastVersion: 3, sftSteps: 5, record: store([3, 9, 3]) }), [[3, 'unknown', null, null], [4, 'unknown', null, null]]);
  // v2 claims a batch not before v3's
  const [, o] = await inferOutcomes({ first: 3, last: 4, lastVersion: 3, sftSteps: 1, record: store([3, 4, 3], [2, 4, 2]) });
  assert.deepEqual([o!.kind, o!.applied, o!.version], ['unknown', null, 3]);
  // a record naming another version (a store answering wrongly) counts as missing
  assert.deepEqual(await brief({ first: 1, last: 1, lastVersion: 1, sftSteps: 5, record: async () => ({ version: 7, lastBatchSeq: 1, step: 1 }) }), [[1, 'unknown', null, null]]);
});

test('a record that cannot be read (the store unreachable) counts as missing, and the reason says so', async () => {
  const record: InferOptions['record'] = async (v) => {
    if (v === 2) throw new Error('TIMEOUT');
    return { version: v, lastBatchSeq: v + 1, step: v };
  };
  const got = await inferOutcomes({ first: 3, last: 4, lastVersion: 3, sftSteps: 1, record });
  assert.deepEqual(got.map((x) => [x.seq, x.kind, x.applied, x.version]), [[3, 'unknown', null, null], [4, 'unknown', null, 3]]);
  assert.match(got[1]!.evidence, /checkpoint v2 could not be read \(TIMEOUT\)/);
  assert.match(got[0]!.evidence, /^checkpoint v2 could not be read \(TIMEOUT\); the version before them is not known$/);
});

test('recordFromMeta: last_batch_seq a decimal string, step a non-negative integer; anything else is no record', () => {
  assert.deepEqual(recordFromMeta(3, { last_batch_seq: '5', step: 2, config_hash: 'x' }), { version: 3, lastBatchSeq: 5, step: 2 });
  for (const bad of [null, {}, { last_batch_seq: 5, step: 2 }, { last_batch_seq: '05', step: 2 }, { last_batch_seq: '5' }, { last_batch_seq: '5', step: -1 }, { last_batch_seq: '5', step: 1.5 }]) {
    assert.equal(recordFromMeta(3, bad), null, JSON.stringify(bad));
  }
});
