// A TrainBatch through the direct codec over gRPC loopback (round 29, wire29): the learner's decoded tensors
// (learner/batch.ts decodeTrainBatch) are views of each received message, hold the values sent, are not overwritten by
// the messages after them, and the batch digest of the received message is the sent batch's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeTensor } from '../../lib/transport/tensor.ts';
import { startOrchestratorServer, type WorkerSession } from '../../lib/transport/grpc-server.ts';
import { connectToOrchestrator } from '../../lib/transport/grpc-client.ts';
import { trainBatchDigest } from '../../lib/transport/batch-digest.ts';
import type { OrchestratorMessage__Output, TrainBatch } from '../../lib/transport/proto.ts';
import { decodeTrainBatch, type DecodedBatch } from '../../learner/batch.ts';

const H = 16;
const MAP = H - 10; // ssimMapSize(16)
const f32 = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7 + i) * 3);
const t = (data: Float32Array, shape: number[]) => encodeTensor({ dtype: 'float32', shape, data }, { share: true });

function grpoBatch(seq: number, n: number): { batch: TrainBatch; arrays: Record<string, Float32Array> } {
  const pix = 3 * H * H;
  const k = Math.ceil(n / 4);
  const arrays = { distinct: f32(k * pix, seq), actions: f32(n * pix, seq + 1), logpOld: f32(n * pix, seq + 2), advantages: f32(n, seq + 3), advantageMap: f32(n * 3 * MAP * MAP, seq + 4) };
  return {
    arrays,
    batch: {
      batch_id: `run-b${seq}`.repeat(seq % 3 + 1), batch_seq: seq, kind: 'GRPO', lease_ms: 1000,
      distinct_images: t(arrays.distinct, [k, 3, H, H]), image_rows: Array.from({ length: n }, (_, i) => i >> 2),
      actions: t(arrays.actions, [n, 3, H, H]), logp_old: t(arrays.logpOld, [n, 3, H, H]), advantages: t(arrays.advantages, [n]),
      advantage_map: t(arrays.advantageMap, [n, 3, MAP, MAP]), behaviour_versions: Array(n).fill(seq), sample_ids: Array.from({ length: n }, (_, i) => `s${i}`),
      group_indices: Array.from({ length: n }, (_, i) => i >> 2),
    },
  };
}

test('TrainBatch over gRPC loopback: the learner\'s decoded tensors are views of each message, with the values and digest sent', async () => {
  let gotSession: (s: WorkerSession) => void = () => {};
  const sessionReady = new Promise<WorkerSession>((r) => (gotSession = r));
  const server = await startOrchestratorServer({
    auth: { token: 'tok' },
    onConnect: async (s) => {
      await s.send({ welcome: { run_id: 'run-t', config_json: '{}', policy_version: 1, heartbeat_interval_ms: 0 } });
      gotSession(s);
    },
  });
  try {
    const conn = await connectToOrchestrator({
      address: server.address, role: 'LEARNER', workerId: 'learner-v', token: 'tok', connectTimeoutMs: 3000,
      capabilities: { device: 'cpu', max_batch: 64, max_in_flight: 1 },
    });
    const session = await sessionReady;
    const it = conn.messages[Symbol.asyncIterator]();
    const kept: Array<{ decoded: DecodedBatch; arrays: Record<string, Float32Array>; buffer: ArrayBufferLike }> = [];
    for (let seq = 1; seq <= 6; seq++) {
      const { batch, arrays } = grpoBatch(seq, 4 * seq);
      await session.send({ train_batch: batch });
      const { value } = (await it.next()) as { value: OrchestratorMessage__Output };
      const got = value.train_batch!;
      assert.equal(got.kind, 'GRPO');
      assert.equal(trainBatchDigest(got), trainBatchDigest(batch), `seq ${seq}: the received batch's digest is the sent one's`);
      const decoded = decodeTrainBatch(got, { height: H, width: H, mode: 'dense' });
      assert.equal(decoded.kind, 'grpo');
      const buffer = (got.actions!.data as Uint8Array).buffer;
      if (decoded.kind !== 'grpo') throw new Error('unreachable');
      // every tensor of more than 63 values lies aligned in the received message: a view of it (advantages [n] of
      // 4-24 values may be either); the policy inputs are expanded per row (a fresh array)
      for (const [name, a] of [['actions', decoded.actions], ['logpOld', decoded.logpOld], ['advantageMap', decoded.advantageMap!]] as const) {
        assert.equal(a.buffer, buffer, `seq ${seq}: ${name} is a view of the received message`);
      }
      assert.notEqual(decoded.images.buffer, buffer);
      kept.push({ decoded, arrays, buffer });
    }
    // the earlier batches' views still hold their own values, each message its own buffer
    assert.equal(new Set(kept.map((k) => k.buffer)).size, kept.length);
    for (const { decoded, arrays } of kept) {
      if (decoded.kind !== 'grpo') throw new Error('unreachable');
      assert.deepEqual(decoded.actions, arrays.actions);
      assert.deepEqual(decoded.logpOld, arrays.logpOld);
      assert.deepEqual(decoded.advantages, arrays.advantages);
      assert.deepEqual(decoded.advantageMap, arrays.advantageMap);
      const pix = 3 * H * H;
      for (let i = 0; i < decoded.n; i++) assert.deepEqual(decoded.images.subarray(i * pix, (i + 1) * pix), arrays.distinct!.subarray((i >> 2) * pix, ((i >> 2) + 1) * pix));
    }
    // SFT: images and targets views too
    const img = f32(8 * 3 * H * H, 50);
    const tgt = f32(8 * 3 * H * H, 51);
    const sft: TrainBatch = { batch_id: 'run-b9', batch_seq: 9, kind: 'SFT', images: t(img, [8, 3, H, H]), targets: t(tgt, [8, 3, H, H]), sample_ids: [] };
    await session.send({ train_batch: sft });
    const got = ((await it.next()) as { value: OrchestratorMessage__Output }).value.train_batch!;
    assert.equal(trainBatchDigest(got), trainBatchDigest(sft));
    const d = decodeTrainBatch(got, { height: H, width: H });
    if (d.kind !== 'sft') throw new Error(`kind ${d.kind}`);
    assert.equal(d.images.buffer, (got.images!.data as Uint8Array).buffer);
    assert.equal(d.targets.buffer, d.images.buffer);
    assert.deepEqual(d.images, img);
    assert.deepEqual(d.targets, tgt);
    await conn.close();
  } finally {
    await server.close();
  }
});
