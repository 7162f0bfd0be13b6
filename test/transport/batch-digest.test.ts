// TrainResult.batch_digest (lib/transport/batch-digest.ts): the digest the orchestrator computes over the TrainBatch
// it sends equals the one the learner computes over what it decodes, through both wire codecs; any field the learner
// reads changes it; lease_ms and rollout_workers do not. The reference for "the same content" is the real codec's round trip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as protoLoader from '@grpc/proto-loader';
import { LOADER_OPTIONS, PROTO_PATH, encodeTensor, trainBatchDigest, type OrchestratorMessage__Output, type TrainBatch } from '../../lib/transport/index.ts';
import { envelopeCodec } from '../../lib/transport/wire-codec.ts';

const def = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS);
const connect = (def['recovery.v1.Orchestrator'] as unknown as Record<string, protoLoader.MethodDefinition<unknown, unknown>>)['Connect']!;
const ref = { encode: connect.responseSerialize, decode: connect.responseDeserialize };
const direct = envelopeCodec(PROTO_PATH, 'recovery.v1.OrchestratorMessage', ref);

const t = (shape: number[], fill: (i: number) => number) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return encodeTensor({ dtype: 'float32', shape, data: Float32Array.from({ length: n }, (_, i) => fill(i)) });
};

function grpoBatch(): TrainBatch {
  return {
    batch_id: 'run-b7', batch_seq: 7, kind: 'GRPO', lease_ms: 30_000,
    distinct_images: t([2, 3, 4, 4], (i) => i / 96), image_rows: [0, 0, 1, 1],
    actions: t([4, 3, 4, 4], (i) => (i % 7) / 7), logp_old: t([4], (i) => -1 - i), advantages: t([4], (i) => (i % 2 ? 1 : -1)),
    behaviour_versions: [3, 3, 3, 3], sample_ids: ['a', 'a', 'b', 'b'], group_indices: [0, 1, 0, 1],
  };
}

test('the sender\'s batch and the decoded one give the same digest, through proto-loader and the direct codec', () => {
  for (const b of [grpoBatch(), { ...grpoBatch(), rollout_workers: ['w1', 'w1', 'w2', 'w2'] }, { batch_id: 'run-b1', batch_seq: 1, kind: 'SFT' as const, images: t([1, 3, 2, 2], (i) => i), targets: t([1, 3, 2, 2], (i) => -i), sample_ids: ['s'] }]) {
    const d = trainBatchDigest(b);
    assert.match(d, /^sha256:[0-9a-f]{64}$/);
    for (const [name, codec] of [['proto-loader', ref], ['direct', direct]] as const) {
      const decoded = codec.decode(codec.encode({ train_batch: b }) as Buffer) as OrchestratorMessage__Output;
      assert.equal(trainBatchDigest(decoded.train_batch!), d, `${name}: batch ${b.batch_seq}`);
    }
  }
});

test('any field the learner reads changes the digest; lease_ms and rollout_workers do not', () => {
  const base = trainBatchDigest(grpoBatch());
  assert.equal(trainBatchDigest({ ...grpoBatch(), lease_ms: 1 }), base);
  // rollout_workers (round 32): only reported back, and an older learner drops it (it must compute the same digest)
  assert.equal(trainBatchDigest({ ...grpoBatch(), rollout_workers: ['w1', 'w1', 'w2', 'w2'] }), base);
  assert.equal(trainBatchDigest({ ...grpoBatch(), rollout_workers: ['w1', 'w1', 'w3', 'w3'] }), base);
  assert.equal(trainBatchDigest({ ...grpoBatch(), kind: 2 }), base, 'an enum by number is its name');
  const changed: Array<[string, Partial<TrainBatch>]> = [
    ['batch_seq', { batch_seq: 8 }],
    ['batch_id', { batch_id: 'run-b7x' }],
    ['kind', { kind: 'SFT' }],
    ['logp_old (one value)', { logp_old: t([4], (i) => (i === 3 ? -4.0001 : -1 - i)) }],
    ['actions', { actions: t([4, 3, 4, 4], (i) => (i % 5) / 7) }],
    ['advantages', { advantages: t([4], () => 0) }],
    ['behaviour_versions', { behaviour_versions: [3, 3, 3, 4] }],
    ['sample_ids', { sample_ids: ['a', 'a', 'b', 'c'] }],
    ['group_indices', { group_indices: [1, 0, 0, 1] }],
    ['image_rows', { image_rows: [0, 1, 1, 1] }],
    ['a tensor\'s shape', { logp_old: { ...t([4], (i) => -1 - i), shape: [2, 2] } }],
    ['identity_advantages added', { identity_advantages: t([4], () => 0) }],
    ['an empty flow_rows message added', { flow_rows: {} }],
  ];
  for (const [what, patch] of changed) assert.notEqual(trainBatchDigest({ ...grpoBatch(), ...patch }), base, what);
  // a value moved between two adjacent strings is another content (each string is length-prefixed)
  assert.notEqual(trainBatchDigest({ ...grpoBatch(), sample_ids: ['ab', '', 'b', 'b'] }), trainBatchDigest({ ...grpoBatch(), sample_ids: ['a', 'b', 'b', 'b'] }));
});

test('the canonical form, by hand for a small batch (independent of the module: the format in its header)', () => {
  const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
  const s = (x: string) => Buffer.concat([u32(Buffer.byteLength(x)), Buffer.from(x)]);
  const data = Buffer.from(new Float32Array([-1.5]).buffer);
  const len8 = Buffer.alloc(8);
  len8.writeBigUInt64LE(BigInt(data.length));
  const bytes = Buffer.concat([
    Buffer.from('recovery.TrainBatch.digest.v1\0'),
    u32(1), s('r-b2'), u32(2), u32(2), u32(3), s('GRPO'),
    u32(8), s('float32'), u32(1), s('1'), len8, data,
    u32(11), u32(1), s('z'),
  ]);
  const want = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  assert.equal(trainBatchDigest({ batch_id: 'r-b2', batch_seq: 2, kind: 'GRPO', lease_ms: 5, logp_old: { dtype: 'float32', shape: ['1'], data }, sample_ids: ['z'], behaviour_versions: [] }), want);
});
