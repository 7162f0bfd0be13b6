// The direct wire codec (lib/transport/wire-codec.ts) against proto-loader's serialisers, the reference it
// replaces: on random messages of every envelope member it handles, the same bytes when encoding and the same
// objects when decoding. The random messages are built from protobufjs's reflection of the .proto, not from the
// codec's own schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import * as protoLoader from '@grpc/proto-loader';
import { LOADER_OPTIONS, PROTO_PATH } from '../../lib/transport/proto.ts';
import { alignTensorData, encodeFast, envelopeCodec, schemaFor } from '../../lib/transport/wire-codec.ts';
import { deserializeResponse, serializeRequest, useWireCodec } from '../../lib/transport/grpc-common.ts';
import { trainBatchDigest } from '../../lib/transport/batch-digest.ts';
import type { TrainBatch, TrainBatch__Output } from '../../lib/transport/proto.ts';

const def = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS);
const connect = (def['recovery.v1.Orchestrator'] as unknown as Record<string, protoLoader.MethodDefinition<unknown, unknown>>)['Connect']!;
const ref = {
  worker: { encode: connect.requestSerialize, decode: connect.requestDeserialize },
  orchestrator: { encode: connect.responseSerialize, decode: connect.responseDeserialize },
};
const codecs = {
  worker: envelopeCodec(PROTO_PATH, 'recovery.v1.WorkerMessage', ref.worker),
  orchestrator: envelopeCodec(PROTO_PATH, 'recovery.v1.OrchestratorMessage', ref.orchestrator),
};
const root = new protobuf.Root();
root.loadSync(PROTO_PATH, { keepCase: true });
root.resolveAll();

const U64 = 2n ** 64n;
/** An arbitrary plain object for message type `t`, as a caller of proto-loader's serializer would give it. */
function arbitraryOf(t: protobuf.Type, depth: number): fc.Arbitrary<Record<string, unknown>> {
  const parts: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of t.fieldsArray) {
    f.resolve();
    let one: fc.Arbitrary<unknown>;
    if (f.resolvedType instanceof protobuf.Type) {
      if (depth <= 0) continue;
      one = arbitraryOf(f.resolvedType, depth - 1);
    } else if (f.resolvedType instanceof protobuf.Enum) {
      // what proto-loader's serializer takes: a name, a known number, or a number the enum does not name (int32)
      const e = f.resolvedType;
      one = fc.oneof(fc.constantFrom(...Object.keys(e.values)), fc.constantFrom(...Object.values(e.values)), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.integer({ min: -3, max: 9 }));
    } else {
      switch (f.type) {
        case 'uint32': one = fc.oneof(fc.nat(300), fc.integer({ min: 0, max: 2 ** 32 - 1 })); break;
        case 'double': one = fc.double(); break;
        case 'float': one = fc.float(); break;
        case 'bool': one = fc.boolean(); break;
        case 'string': one = fc.string({ unit: 'grapheme', maxLength: 12 }); break;
        case 'bytes': one = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)); break;
        case 'int64': one = fc.oneof(fc.nat(1000), fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n).map(String), fc.nat(1000).map(String)); break;
        case 'uint64': one = fc.oneof(fc.nat(1000), fc.bigInt(0n, U64 - 1n).map(String)); break;
        default: throw new Error(`test: no arbitrary for ${f.type} (${t.name}.${f.name})`);
      }
    }
    parts[f.name] = f.repeated ? fc.array(one, { maxLength: 3 }) : one;
  }
  // Every field may be absent; at most one member of each oneof is set.
  return fc.record(parts, { requiredKeys: [] }).map((o) => {
    for (const oneof of t.oneofsArray) {
      const set = oneof.oneof.filter((n) => o[n] !== undefined);
      for (const n of set.slice(1)) delete o[n];
    }
    return o;
  });
}

for (const side of ['worker', 'orchestrator'] as const) {
  const envelope = root.lookupType(side === 'worker' ? 'recovery.v1.WorkerMessage' : 'recovery.v1.OrchestratorMessage');
  const codec = codecs[side];
  test(`wire codec, ${side} messages: every member but Hello (a map below it) is handled`, () => {
    const want = side === 'worker'
      ? ['heartbeat', 'rollout_result', 'score_result', 'task_error', 'result_bundle', 'train_result']
      : ['welcome', 'rollout_task', 'score_task', 'cancel_task', 'shutdown', 'task_bundle', 'train_batch'];
    assert.deepEqual([...codec.handled].sort(), [...want].sort());
  });
  for (const member of codec.handled) {
    const f = envelope.fields[member]!;
    test(`wire codec, ${side} ${member}: the same bytes and objects as proto-loader on random messages`, () => {
      fc.assert(
        fc.property(arbitraryOf(f.resolvedType as protobuf.Type, 3), (inner) => {
          const msg = { [member]: inner };
          const bytes = codec.encode(msg);
          const want = ref[side].encode(msg);
          assert.deepEqual(bytes, want);
          assert.deepStrictEqual(codec.decode(bytes), ref[side].decode(want));
          // The member itself through the two-pass encoder (not protobufjs's fallback): taken, and the same bytes
          // (protobufjs's after fromObject, as proto-loader's serializer: an enum's name becomes its number there).
          const type = f.resolvedType as protobuf.Type;
          const fast = encodeFast(schemaFor(PROTO_PATH, type.fullName.slice(1)), inner);
          assert.ok(fast, `${type.name}: the fast encoder declined a valid message`);
          assert.deepEqual(fast, Buffer.from(type.encode(type.fromObject(inner)).finish()));
        }),
        { numRuns: 60 },
      );
    });
  }
}

test('wire codec: Hello goes through proto-loader both ways, TrainBatch through the codec', () => {
  const hello = { hello: { protocol_version: 1, role: 'REWARD', worker_id: 'r1', capabilities: { device: 'cpu', max_batch: 2, max_in_flight: 4, labels: { a: 'b' } } } };
  const bytes = codecs.worker.encode(hello);
  assert.deepEqual(bytes, ref.worker.encode(hello));
  assert.deepStrictEqual(codecs.worker.decode(bytes), ref.worker.decode(bytes));
  // a codec whose proto-loader fallback fails: a TrainBatch never reaches it, a Hello does
  const refuse = () => {
    throw new Error('fallback used');
  };
  const alone = {
    worker: envelopeCodec(PROTO_PATH, 'recovery.v1.WorkerMessage', { encode: refuse, decode: refuse }),
    orchestrator: envelopeCodec(PROTO_PATH, 'recovery.v1.OrchestratorMessage', { encode: refuse, decode: refuse }),
  };
  assert.throws(() => alone.worker.encode(hello), /fallback used/);
  assert.throws(() => alone.worker.decode(bytes), /fallback used/);
  const batch = { train_batch: { batch_id: 'b', kind: 'GRPO', sample_ids: ['x'], images: { dtype: 'float32', shape: [1, 3, 2, 2], data: Buffer.alloc(48) } } };
  const b2 = alone.orchestrator.encode(batch);
  assert.deepEqual(b2, ref.orchestrator.encode(batch));
  assert.deepStrictEqual(alone.orchestrator.decode(b2), ref.orchestrator.decode(b2));
});

test('wire codec: enum values as proto-loader takes and gives them (names, numbers, unknown numbers and names)', () => {
  const kinds: Array<[unknown, unknown]> = [
    // what is sent -> what proto-loader decodes
    ['TRAIN_KIND_UNSPECIFIED', 'TRAIN_KIND_UNSPECIFIED'], ['SFT', 'SFT'], ['GRPO', 'GRPO'], [0, 'TRAIN_KIND_UNSPECIFIED'], [1, 'SFT'], [2, 'GRPO'],
    [7, 7], [-1, -1], [2 ** 31 - 1, 2 ** 31 - 1], [-(2 ** 31), -(2 ** 31)], // numbers it does not name: kept as numbers
    ['FOO', 'TRAIN_KIND_UNSPECIFIED'], ['sft', 'TRAIN_KIND_UNSPECIFIED'], [null, 'TRAIN_KIND_UNSPECIFIED'], [undefined, 'TRAIN_KIND_UNSPECIFIED'], // dropped by fromObject
    [1.5, 'SFT'], [2 ** 32 + 2, 'GRPO'], [true, 'TRAIN_KIND_UNSPECIFIED'], // left to proto-loader, which writes what it writes
  ];
  for (const [kind, want] of kinds) {
    const msg = { train_batch: { batch_id: 'b', batch_seq: 3, kind } };
    const bytes = codecs.orchestrator.encode(msg);
    assert.deepEqual(bytes, ref.orchestrator.encode(msg), String(kind));
    const got = codecs.orchestrator.decode(bytes) as { train_batch: { kind: unknown } };
    assert.deepStrictEqual(got, ref.orchestrator.decode(bytes), String(kind));
    assert.equal(got.train_batch.kind, want, String(kind));
  }
  // the fast encoder takes names and int32 numbers and nothing else
  const s = schemaFor(PROTO_PATH, 'recovery.v1.TrainBatch');
  for (const kind of ['SFT', 2, 7, -1]) assert.ok(encodeFast(s, { kind }), String(kind));
  for (const kind of ['FOO', 1.5, 2 ** 31, true, {}]) assert.equal(encodeFast(s, { kind }), undefined, String(kind));
  // Hello's role decodes the same way (its envelope is proto-loader's for Capabilities' map; its schema is the codec's)
  const hs = schemaFor(PROTO_PATH, 'recovery.v1.Hello');
  assert.equal(hs.handled, false);
});

test('wire codec: a malformed enum is refused with a RangeError naming the field', () => {
  const W = protobuf.Writer;
  const envelope = (batch: Uint8Array) => Buffer.from(W.create().uint32((4 << 3) | 2).bytes(batch).finish());
  // kind (field 3) as a length-delimited field, as a fixed64, and its varint cut short
  assert.throws(() => codecs.orchestrator.decode(envelope(W.create().uint32((3 << 3) | 2).bytes(Buffer.from([1])).finish())), /^RangeError: wire codec: \.recovery\.v1\.TrainBatch\.kind: wire type 2, expected 0 at offset \d+/);
  assert.throws(() => codecs.orchestrator.decode(envelope(W.create().uint32((3 << 3) | 1).fixed64(1).finish())), /^RangeError: wire codec: \.recovery\.v1\.TrainBatch\.kind: wire type 1, expected 0/);
  assert.throws(() => codecs.orchestrator.decode(envelope(Buffer.from([(3 << 3) | 0, 0x80]))), /^RangeError: wire codec: varint past the end/);
  // an 11-byte varint
  assert.throws(() => codecs.orchestrator.decode(envelope(Buffer.from([(3 << 3) | 0, ...Array(10).fill(0x80), 1]))), /^RangeError: wire codec: varint longer than 10 bytes/);
  // a TrainBatch cut inside a tensor
  const ok = codecs.orchestrator.encode({ train_batch: { kind: 'SFT', images: { dtype: 'float32', shape: [2, 3], data: Buffer.alloc(24) } } });
  for (let cut = 1; cut < ok.length; cut++) {
    assert.throws(() => codecs.orchestrator.decode(ok.subarray(0, cut)), RangeError, `cut at ${cut}`);
  }
});

test('wire codec: decodes unknown fields, unpacked repeated scalars and repeated fields as proto-loader does', () => {
  const W = protobuf.Writer;
  // rollout_result { task_id "t", items { action { shape 3 (unpacked), shape 4 (unpacked), dtype "f" } }, field 99 varint, field 98 bytes }
  const tensor = W.create().uint32((2 << 3) | 0).int64(3).uint32((2 << 3) | 0).int64(4).uint32((1 << 3) | 2).string('f').finish();
  const action = W.create().uint32((3 << 3) | 2).bytes(tensor).uint32((99 << 3) | 0).uint32(7).finish();
  const result = W.create().uint32((1 << 3) | 2).string('t').uint32((4 << 3) | 2).bytes(action).uint32((98 << 3) | 2).bytes(Buffer.from([1, 2])).uint32((5 << 3) | 1).double(1.5).uint32((1 << 3) | 2).string('u').finish();
  const envelope = Buffer.from(W.create().uint32((3 << 3) | 2).bytes(result).uint32((100 << 3) | 5).fixed32(9).finish());
  const got = codecs.worker.decode(envelope);
  assert.deepStrictEqual(got, ref.worker.decode(envelope));
  assert.equal((got as { rollout_result: { task_id: string } }).rollout_result.task_id, 'u'); // the last one wins
});

test('wire codec: encoding is protobufjs\'s, byte for byte with proto-loader, lone surrogates included', () => {
  for (const s of ['a\ud800b', 'x'.repeat(45) + '\udc00']) {
    const bytes = codecs.orchestrator.encode({ cancel_task: { task_id: s } });
    assert.deepEqual(bytes, ref.orchestrator.encode({ cancel_task: { task_id: s } }));
    assert.deepStrictEqual(codecs.orchestrator.decode(bytes), ref.orchestrator.decode(bytes));
  }
});

test('wire codec: values the fast encoder does not take are left to protobufjs, with its bytes', () => {
  const s = schemaFor(PROTO_PATH, 'recovery.v1.RolloutTask');
  const envelope = root.lookupType('recovery.v1.OrchestratorMessage');
  const odd = [
    { task_id: 'a', items: [{ noise_seed: '12x' }] }, // not a decimal string
    { task_id: 'a', items: [{ image: { data: 'AAEC' } }] }, // bytes as base64 text
    { task_id: 7 }, // a number for a string
    { task_id: 'a', items: { length: 0 } }, // not an array
  ];
  for (const m of odd) {
    assert.equal(encodeFast(s, m), undefined, JSON.stringify(m));
    const msg = { rollout_task: m };
    let want: Buffer | undefined;
    try {
      want = Buffer.from(envelope.encode(msg).finish());
    } catch {
      assert.throws(() => codecs.orchestrator.encode(msg)); // protobufjs refuses it: so does the codec, as before
      continue;
    }
    assert.deepEqual(codecs.orchestrator.encode(msg), want);
  }
  // int64 edge cases: negative numbers and strings, 2^64 - 1, values past 2^64 (wrapped as Long.fromString does)
  const tensor = root.lookupType('recovery.v1.Tensor');
  for (const shape of [[-1, -4294967296, 2 ** 53], ['-1', '18446744073709551615', '18446744073709551616', '-9223372036854775808', '0', '-0']]) {
    assert.deepEqual(encodeFast(schemaFor(PROTO_PATH, 'recovery.v1.Tensor'), { shape }), Buffer.from(tensor.encode({ shape }).finish()), JSON.stringify(shape));
  }
});

test('wire codec: a truncated or malformed message is refused', () => {
  const bytes = codecs.orchestrator.encode({ rollout_task: { task_id: 'abc', items: [{ sample_id: 's', noise_seed: '12' }] } });
  assert.throws(() => codecs.orchestrator.decode(bytes.subarray(0, bytes.length - 2)), RangeError);
  assert.throws(() => codecs.orchestrator.decode(Buffer.from([(2 << 3) | 2, 0x05, 0x0a])), RangeError);
});

test('wire codec: a packed shape longer than a tensor may be is refused before it is decoded, naming the field and the limit', () => {
  const W = protobuf.Writer;
  // rollout_result { items { action: Tensor { shape (packed) } } }: shape runs given as raw bytes
  const envelope = (...runs: Buffer[]) => {
    const tensor = W.create();
    for (const run of runs) tensor.uint32((2 << 3) | 2).bytes(run);
    const action = W.create().uint32((3 << 3) | 2).bytes(tensor.finish()).finish();
    const result = W.create().uint32((1 << 3) | 2).string('t').uint32((4 << 3) | 2).bytes(action).finish();
    return Buffer.from(W.create().uint32((3 << 3) | 2).bytes(result).finish());
  };
  const tooMany = (bytes: number, least: number, after = '') => new RegExp(
    `^RangeError: wire codec: \\.recovery\\.v1\\.Tensor\\.shape: a packed run of ${bytes} bytes${after} at offset \\d+ holds at least ${least} entries, over the limit of 8 \\(a tensor's rank, MAX_RANK in lib/transport/tensor\\.ts\\)$`,
  );
  // 81 one-byte entries: more than 8 whatever their encoding (a varint takes at most 10 bytes); and 1 MiB of them
  assert.throws(() => codecs.worker.decode(envelope(Buffer.alloc(81))), tooMany(81, 9));
  assert.throws(() => codecs.worker.decode(envelope(Buffer.alloc(1 << 20))), tooMany(1 << 20, 104858));
  // runs of one field add up: 8 entries, then one more byte
  const eight = Buffer.alloc(8);
  assert.throws(() => codecs.worker.decode(envelope(eight, Buffer.alloc(1))), tooMany(1, 9, ' after 8 entries'));
  // what might hold 8 entries or fewer decodes as before, as proto-loader does: 8 ten-byte varints (-1), and 9
  // one-byte ones in 9 bytes (rank 9: left to the validation, checkShape, as before)
  const minusOnes = Buffer.from(W.create().int64(-1).int64(-1).int64(-1).int64(-1).int64(-1).int64(-1).int64(-1).int64(-1).finish());
  assert.equal(minusOnes.length, 80);
  for (const ok of [envelope(minusOnes), envelope(Buffer.alloc(9)), envelope(eight), envelope(Buffer.alloc(4), Buffer.alloc(4))]) {
    assert.deepStrictEqual(codecs.worker.decode(ok), ref.worker.decode(ok));
  }
  // unpacked entries (a key each): 80 decode as proto-loader does (rank 9-80 is the validation's to refuse, as for a
  // packed run of up to 80 bytes); the 81st is refused before it is read, and so are a million
  const unpacked = (count: number) => {
    const tensor = W.create();
    for (let i = 0; i < count; i++) tensor.uint32(2 << 3).int64(1);
    const action = W.create().uint32((3 << 3) | 2).bytes(tensor.finish()).finish();
    const result = W.create().uint32((1 << 3) | 2).string('t').uint32((4 << 3) | 2).bytes(action).finish();
    return Buffer.from(W.create().uint32((3 << 3) | 2).bytes(result).finish());
  };
  assert.deepStrictEqual(codecs.worker.decode(unpacked(80)), ref.worker.decode(unpacked(80)));
  const overUnpacked = /^RangeError: wire codec: \.recovery\.v1\.Tensor\.shape: more than 80 unpacked entries at offset \d+, over the limit of 8 \(a tensor's rank, MAX_RANK in lib\/transport\/tensor\.ts\)$/;
  assert.throws(() => codecs.worker.decode(unpacked(81)), overUnpacked);
  assert.throws(() => codecs.worker.decode(unpacked(1_000_000)), overUnpacked);
  // a truncated one is still refused as truncated
  const cut = envelope(Buffer.alloc(200));
  assert.throws(() => codecs.worker.decode(cut.subarray(0, cut.length - 1)), /past the end/);
});

test('wire codec: the transport uses it, and proto-loader when asked, with the same bytes', () => {
  const msg = { result_bundle: { rollout_results: [{ task_id: 't', attempt: 2, items: [{ sample_id: 's', action: { dtype: 'float32', shape: ['3', '1', '1'], data: Buffer.alloc(12, 1) } }] }] } };
  const direct = serializeRequest(msg);
  useWireCodec('proto-loader');
  try {
    assert.deepEqual(serializeRequest(msg), direct);
  } finally {
    useWireCodec('direct');
  }
  const task = ref.orchestrator.encode({ task_bundle: { rollout_tasks: [{ task_id: 'a', items: [{ noise_seed: '18446744073709551615' }] }] } });
  assert.deepStrictEqual(deserializeResponse(task), ref.orchestrator.decode(task));
});

/** Every Tensor.data (a bytes field of 4 n bytes under a `data` key next to `dtype`) in a decoded object, with its path. */
function tensorData(o: unknown, path = '', out: Array<[string, Uint8Array]> = []): Array<[string, Uint8Array]> {
  if (Array.isArray(o)) o.forEach((x, i) => tensorData(x, `${path}[${i}]`, out));
  else if (o !== null && typeof o === 'object' && !(o instanceof Uint8Array)) {
    const r = o as Record<string, unknown>;
    if ('dtype' in r && r.data instanceof Uint8Array) out.push([path, r.data]);
    else for (const [k, v] of Object.entries(r)) tensorData(v, `${path}.${k}`, out);
  }
  return out;
}

test('wire codec: a tensor\'s data of 256 bytes or more lies 4-byte aligned where grpc-js hands the message over, and decodes to proto-loader\'s object', () => {
  const f32 = (n: number, seed: number) => ({ dtype: 'float32', shape: [n], data: Buffer.from(Float32Array.from({ length: n }, (_, i) => seed + i / 4).buffer) });
  const sizes = fc.oneof(fc.integer({ min: 1, max: 70 }), fc.integer({ min: 60, max: 5000 }));
  const id = fc.string({ unit: 'grapheme', maxLength: 30 });
  const worker = fc.record({ id, n: fc.array(sizes, { minLength: 1, maxLength: 4 }), logp: fc.double(), bundle: fc.boolean() }).map(({ id, n, logp, bundle }) => {
    const result = { task_id: id, attempt: 1, policy_version: 3, items: n.map((k, g) => ({ sample_id: id, group_index: g, action: f32(k, g), logp, logp_map: f32(k + g, -g) })) };
    const score = { task_id: id, components: n.map(() => ({ ssim: 0.5, clip_cos: logp })), ssim_map: f32(n[0]!, 7) };
    return bundle ? { result_bundle: { rollout_results: [result], score_results: [score, score] } } : { rollout_result: result };
  });
  const orchestrator = fc.record({ id, n: fc.array(sizes, { minLength: 1, maxLength: 3 }) }).map(({ id, n }) => {
    const tasks = n.map((k) => ({ task_id: id, attempt: 2, lease_ms: 9, candidates: f32(k, 1), references: f32(k, 2), want_ssim_map: true }));
    return tasks.length > 1 ? { task_bundle: { score_tasks: tasks } } : { score_task: tasks[0] };
  });
  let aligned = 0;
  for (const [side, arb] of [['worker', worker], ['orchestrator', orchestrator]] as const) {
    fc.assert(fc.property(arb, (msg) => {
      const bytes = codecs[side].encode(msg);
      const want = ref[side].decode(ref[side].encode(msg));
      // as grpc-js hands a message to the deserializer: 5 bytes (the frame header) into a buffer of its own
      const framed = Buffer.alloc(bytes.length + 5);
      bytes.copy(framed, 5);
      const direct = codecs[side].decode(framed.subarray(5));
      assert.deepStrictEqual(direct, want);
      assert.deepStrictEqual(ref[side].decode(framed.subarray(5)), want); // proto-loader skips the padding too
      for (const [path, data] of tensorData(direct)) {
        const padded = data.length + (data.length < 128 ? 1 : data.length < 16384 ? 2 : 3) >= 256;
        if (padded) assert.equal(data.byteOffset % 4, 0, `${path}: ${data.length} bytes at offset ${data.byteOffset}`);
        aligned += padded ? 1 : 0;
      }
      // without the padding: protobufjs's bytes, as before
      alignTensorData(false);
      try {
        assert.deepEqual(codecs[side].encode(msg), ref[side].encode(msg));
      } finally {
        alignTensorData(true);
      }
    }), { numRuns: 80 });
  }
  assert.ok(aligned > 50, `${aligned} padded tensors met`);
});

test('wire codec: TrainBatches of every kind, flow rows included, decode to proto-loader\'s object with their large tensors aligned views, and the same batch digest', () => {
  const f32 = (shape: number[], seed: number) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return { dtype: 'float32', shape, data: Buffer.from(Float32Array.from({ length: n }, (_, i) => Math.sin(seed + i)).buffer) };
  };
  const kinds = fc.constantFrom<unknown>('TRAIN_KIND_UNSPECIFIED', 'SFT', 'GRPO', 0, 1, 2, 5);
  // TrainBatch.worker_ids (field 21, round 33): absent, empty, or quarantined ids and bindings
  const workerIds = fc.option(fc.record({ quarantined: fc.array(fc.stringMatching(/^[a-z0-9.-]{1,12}$/), { maxLength: 4 }), bound: fc.array(fc.record({ key: fc.stringMatching(/^rollout\/[a-z0-9]{1,8}$/), credential: fc.stringMatching(/^token:[0-9a-f]{16}$/) }), { maxLength: 3 }) }), { nil: undefined });
  const arb = fc.record({ id: fc.string({ unit: 'grapheme', maxLength: 30 }), seq: fc.nat(), kind: kinds, n: fc.integer({ min: 1, max: 40 }), px: fc.integer({ min: 2, max: 12 }), flow: fc.boolean(), distinct: fc.boolean(), ids: workerIds })
    .map(({ id, seq, kind, n, px, flow, distinct, ids }) => {
      const img = [n, 3, px, px];
      const batch: Record<string, unknown> = {
        batch_id: id, batch_seq: seq, kind, lease_ms: 30000, actions: f32(img, 1), advantages: f32([n], 2),
        behaviour_versions: Array.from({ length: n }, (_, i) => i % 3), sample_ids: Array.from({ length: n }, (_, i) => `${id}-${i}`),
        group_indices: Array.from({ length: n }, (_, i) => i >> 2), advantage_map: f32([n, 3, px, px], 3),
        identity_advantages: f32([n], 4), identity_advantage_map: f32(img, 5),
      };
      if (distinct) Object.assign(batch, { distinct_images: f32([Math.ceil(n / 4), 3, px, px], 6), image_rows: Array.from({ length: n }, (_, i) => i >> 2) });
      else batch.images = f32(img, 7);
      if (flow) batch.flow_rows = { action_index: [0, 1, 1], step_index: [0, 0, 1], t: f32([3], 8), t_next: f32([3], 9), a: f32([3, 3, px, px], 10), x: f32([3, 3, px, px], 11), x_next: f32([3, 3, px, px], 12), logp_old: f32([3], 13) };
      else batch.logp_old = f32(img, 14);
      if (ids) Object.assign(batch, { worker_ids: ids, rollout_workers: Array.from({ length: n }, (_, i) => `w${i >> 2}`) });
      return { train_batch: batch };
    });
  const seen = new Set<unknown>();
  let views = 0;
  let withIds = 0;
  fc.assert(fc.property(arb, (msg) => {
    const bytes = codecs.orchestrator.encode(msg);
    const framed = Buffer.alloc(bytes.length + 5); // as grpc-js hands it over (see the alignment test)
    bytes.copy(framed, 5);
    const got = codecs.orchestrator.decode(framed.subarray(5)) as { train_batch: TrainBatch__Output };
    const want = ref.orchestrator.decode(ref.orchestrator.encode(msg)) as { train_batch: TrainBatch__Output };
    assert.deepStrictEqual(got, want);
    seen.add(got.train_batch.kind);
    for (const [path, data] of tensorData(got)) {
      if (data.length >= 254) {
        assert.equal(data.byteOffset % 4, 0, `${path}: ${data.length} bytes at offset ${data.byteOffset}`);
        assert.equal(data.buffer, framed.buffer, `${path}: a view of the received buffer`);
        views++;
      }
    }
    const digest = trainBatchDigest(msg.train_batch as TrainBatch);
    assert.equal(trainBatchDigest(got.train_batch), digest);
    assert.equal(trainBatchDigest(want.train_batch), digest);
    // rollout_workers and worker_ids are not in the digest: an older learner, which drops them, computes the same
    const { worker_ids: sentIds, rollout_workers: _w, ...older } = msg.train_batch as TrainBatch;
    assert.equal(trainBatchDigest(older), digest);
    if (sentIds) {
      withIds++;
      assert.equal(JSON.stringify(got.train_batch.worker_ids), JSON.stringify({ quarantined: sentIds.quarantined, bound: sentIds.bound }));
    } else assert.equal(got.train_batch.worker_ids, null);
  }), { numRuns: 60 });
  assert.ok(withIds > 10, `${withIds} batches with worker_ids met`);
  assert.deepEqual([...seen].sort(), ['GRPO', 'SFT', 'TRAIN_KIND_UNSPECIFIED', 5].sort(), 'every TrainKind met, and a number it does not name');
  assert.ok(views > 100, `${views} aligned views met`);
});
