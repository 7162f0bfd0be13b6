// decodeTensor returns a view of the message's bytes for float32 at an offset aligned to 4, a copy otherwise
// (issue #15; docs/performance-history/pipeline.md "Round 27: wire27"): the same values either way, the same
// validations, and a received message's bytes are its own (no later message overwrites a view).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeTensor, encodeTensor, type HostTensor } from '../../lib/transport/tensor.ts';
import { startOrchestratorServer, type WorkerSession } from '../../lib/transport/grpc-server.ts';
import { connectToOrchestrator } from '../../lib/transport/grpc-client.ts';
import * as protoLoader from '@grpc/proto-loader';
import { envelopeCodec } from '../../lib/transport/wire-codec.ts';
import { LOADER_OPTIONS, PROTO_PATH } from '../../lib/transport/proto.ts';
import type { OrchestratorMessage__Output, WorkerMessage__Output } from '../../lib/transport/proto.ts';

/** The float32 LE bytes of `values` at byte `offset` of a fresh buffer (with junk around them). */
function bytesAt(values: Float32Array, offset: number): Buffer {
  const buf = Buffer.alloc(offset + values.length * 4 + 3, 0xa5);
  values.forEach((v, i) => buf.writeFloatLE(v, offset + i * 4));
  return buf.subarray(offset, offset + values.length * 4);
}

const isViewOf = (t: HostTensor, raw: Uint8Array) => t.data.buffer === raw.buffer && t.data.byteOffset === raw.byteOffset;

test('decodeTensor float32: the same values at every offset; a view of the bytes when aligned to 4, a fresh array when not', () => {
  fc.assert(
    fc.property(fc.float32Array({ minLength: 0, maxLength: 40, noNaN: true, noDefaultInfinity: true }), fc.integer({ min: 0, max: 11 }), (values, offset) => {
      const raw = bytesAt(values, offset);
      const t = decodeTensor({ dtype: 'float32', shape: [String(values.length)], data: raw }, { expectShape: [values.length] });
      assert.deepEqual(t.shape, [values.length]);
      assert.equal(t.dtype, 'float32');
      assert.deepEqual(Array.from(t.data, (v) => Object.is(v, -0) ? '-0' : v), Array.from(values, (v) => Object.is(v, -0) ? '-0' : v));
      assert.equal(isViewOf(t, raw), raw.byteOffset % 4 === 0, `byteOffset ${raw.byteOffset}: view iff aligned`);
      if (!isViewOf(t, raw)) assert.notEqual(t.data.buffer, raw.buffer);
    }),
    { numRuns: 300 },
  );
});

test('decodeTensor float32 view: every validation as for a copy, the same messages', () => {
  for (const offset of [0, 1]) {
    const inf = bytesAt(Float32Array.of(1, 2, Infinity, 4), offset);
    assert.throws(() => decodeTensor({ dtype: 'float32', shape: [4], data: inf }, { field: 'score_result.ssim_map' }), /^TensorError: score_result\.ssim_map: non-finite value Infinity at flat index 2$/);
    const ok = decodeTensor({ dtype: 'float32', shape: [4], data: inf }, { allowNonFinite: true });
    assert.equal(ok.data[2], Infinity);
    assert.equal(isViewOf(ok, inf), offset === 0);
    const nan = bytesAt(Float32Array.of(NaN), offset);
    assert.throws(() => decodeTensor({ dtype: 'float32', shape: [1], data: nan }, { field: 'x' }), /x: non-finite value NaN at flat index 0/);
    const short = bytesAt(Float32Array.of(1, 2), offset);
    assert.throws(() => decodeTensor({ dtype: 'float32', shape: [3], data: short }, { field: 'x' }), /x: data has 8 bytes, shape \[3\] x float32 \(4 B\) needs 12/);
    assert.throws(() => decodeTensor({ dtype: 'float32', shape: [2], data: short }, { field: 'x', expectShape: [3] }), /x: shape \[2\] does not match the expected \[3\]/);
    assert.throws(() => decodeTensor({ dtype: 'float32', shape: [2], data: short }, { field: 'x', maxBytes: 4 }), /x: shape \[2\] \(float32\) needs more than the 4-byte limit/);
  }
  // float16 and uint8 are converted, never views
  const h = encodeTensor({ dtype: 'float16', shape: [2], data: Float32Array.of(0.5, 1) });
  assert.notEqual(decodeTensor(h).data.buffer, (h.data as Uint8Array).buffer);
});

test('decodeTensor after either wire codec: a view of the received buffer when aligned; the tensors of one message disjoint, each with its values', () => {
  const def = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS);
  const connect = (def['recovery.v1.Orchestrator'] as unknown as Record<string, protoLoader.MethodDefinition<unknown, unknown>>)['Connect']!;
  const protoLoaderCodec = { encode: connect.requestSerialize, decode: connect.requestDeserialize };
  const direct = envelopeCodec(PROTO_PATH, 'recovery.v1.WorkerMessage', protoLoaderCodec);
  for (const [name, codec] of [['direct', direct], ['proto-loader', protoLoaderCodec]] as const) {
    let views = 0;
    // the task id moves the tensors by one byte a step: every alignment is met
    for (let pad = 0; pad < 8; pad++) {
      const actions = Array.from({ length: 3 }, (_, g) => Float32Array.from({ length: 12 }, (_, i) => g * 100 + i + 0.25));
      const bytes = direct.encode({
        rollout_result: {
          task_id: 't'.repeat(pad + 1), attempt: 1, policy_version: 2,
          items: actions.map((a, g) => ({ group_index: g, logp: -1, action: encodeTensor({ dtype: 'float32', shape: [3, 2, 2], data: a }) })),
        },
      });
      // as grpc-js hands a message over: a buffer of its own, 5 bytes of frame before the message
      const framed = Buffer.alloc(bytes.length + 5);
      bytes.copy(framed, 5);
      const msg = codec.decode(framed.subarray(5)) as WorkerMessage__Output;
      const decoded = msg.rollout_result!.items.map((it) => decodeTensor(it.action, { expectShape: [3, 2, 2] }));
      decoded.forEach((t, g) => assert.deepEqual(t.data, actions[g], `${name}, pad ${pad}, action ${g}`));
      views += decoded.filter((t) => t.data.buffer === framed.buffer).length;
      // writing into one decoded tensor changes no other (views do not overlap)
      decoded[0]!.data.fill(-7);
      decoded.slice(1).forEach((t, g) => assert.deepEqual(t.data, actions[g + 1]));
    }
    assert.ok(views > 0, `${name}: aligned tensors are views of the received buffer`);
  }
});

test('decodeTensor over gRPC loopback: aligned tensors come back as views of each message\'s own bytes, which later messages do not overwrite', async () => {
  const sessions: WorkerSession[] = [];
  let gotSession: (s: WorkerSession) => void = () => {};
  const sessionReady = new Promise<WorkerSession>((r) => (gotSession = r));
  const server = await startOrchestratorServer({
    auth: { token: 'tok' },
    onConnect: async (s) => {
      await s.send({ welcome: { run_id: 'run-v', config_json: '{}', policy_version: 1, heartbeat_interval_ms: 0 } });
      sessions.push(s);
      gotSession(s);
    },
  });
  try {
    const conn = await connectToOrchestrator({
      address: server.address, role: 'ROLLOUT', workerId: 'rollout-v', token: 'tok', connectTimeoutMs: 3000,
      capabilities: { device: 'cpu', max_batch: 8, max_in_flight: 1 },
    });
    const session = await sessionReady;
    const it = conn.messages[Symbol.asyncIterator]();
    // small (Node's buffer pool) and large (a buffer of their own) messages; the task id moves the image by a byte
    const kept: Array<{ t: HostTensor; want: Float32Array; view: boolean }> = [];
    let k = 0;
    for (const n of [12, 3 * 40 * 40]) {
      for (let pad = 0; pad < 8; pad++, k++) {
        const want = Float32Array.from({ length: n }, (_, i) => k * 1000 + i / 8);
        await session.send({
          rollout_task: {
            task_id: 'x'.repeat(pad + 1), attempt: 1, lease_ms: 1000, policy_version_min: 1,
            items: [{ sample_id: 's', group_index: 0, noise_seed: '1', image: encodeTensor({ dtype: 'float32', shape: [3, n / 3, 1], data: want }) }],
          },
        });
        const { value } = (await it.next()) as { value: OrchestratorMessage__Output };
        const raw = value.rollout_task!.items[0]!.image!.data as Uint8Array;
        const t = decodeTensor(value.rollout_task!.items[0]!.image, { expectShape: [3, null, 1] });
        assert.deepEqual(t.data, want);
        kept.push({ t, want, view: isViewOf(t, raw) });
      }
    }
    // every alignment was met: some views, some copies; the earlier messages' values are still theirs
    assert.ok(kept.some((x) => x.view), 'an aligned image comes back as a view');
    assert.ok(kept.some((x) => !x.view), 'an unaligned image comes back as a copy');
    // the direct codec places a tensor's data of 256 bytes or more aligned where grpc-js hands the message over
    // (lib/transport/wire-codec.ts, "alignment"): every large image is a view, whatever the task id's length
    assert.deepEqual(kept.slice(8).map((x) => x.view), Array(8).fill(true));
    for (const x of kept) assert.deepEqual(x.t.data, x.want);
    await conn.close();
  } finally {
    await server.close();
  }
});
