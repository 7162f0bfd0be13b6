import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeTensor,
  decodeOptionalTensor,
  encodeTensor,
  float16Bits,
  firstNonFinite,
  float16Value,
  TensorError,
  type DType,
} from '../../lib/transport/tensor.ts';
import { loadProtocol } from '../../lib/transport/proto.ts';

const shapeArb = fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 0, maxLength: 4 });
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Serialises through the real protobuf codec, as the wire does (int64 shape comes back as strings). */
function throughWire(t: ReturnType<typeof encodeTensor>) {
  const def = loadProtocol().recovery.v1.Tensor;
  return def.deserialize(def.serialize(t));
}

test('float32 round-trips exactly through the protobuf codec', () => {
  fc.assert(
    fc.property(
      shapeArb.chain((shape) =>
        fc.tuple(fc.constant(shape), fc.float32Array({ minLength: size(shape), maxLength: size(shape), noNaN: true, noDefaultInfinity: true })),
      ),
      ([shape, data]) => {
        const wire = throughWire(encodeTensor({ dtype: 'float32', shape, data }));
        assert.deepEqual(wire.shape, shape.map(String));
        const back = decodeTensor(wire, { expectShape: shape });
        assert.deepEqual(back.shape, shape);
        assert.equal(back.dtype, 'float32');
        assert.deepEqual(Array.from(back.data), Array.from(data));
      },
    ),
    { numRuns: 200 },
  );
});

test('uint8 round-trips integers 0..255 and refuses anything else', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 64 }), (vals) => {
      const data = Float32Array.from(vals);
      const back = decodeTensor(throughWire(encodeTensor({ dtype: 'uint8', shape: [vals.length], data })));
      assert.deepEqual(Array.from(back.data), vals);
    }),
  );
  for (const bad of [0.5, -1, 256, NaN]) {
    assert.throws(() => encodeTensor({ dtype: 'uint8', shape: [1], data: Float32Array.of(bad) }, { field: 'img', allowNonFinite: true }), (e: unknown) => e instanceof TensorError && /img: uint8 value/.test(e.message));
  }
});

test('float16: representable values round-trip exactly, others round to nearest (ties to even)', () => {
  // every finite half bit pattern survives encode(decode(bits))
  for (let h = 0; h < 65536; h++) {
    const v = float16Value(h);
    if (Number.isNaN(v)) continue;
    const back = float16Bits(v);
    assert.equal(back, h, `bits ${h.toString(16)} -> ${v} -> ${back.toString(16)}`);
  }
  fc.assert(
    fc.property(fc.float({ min: -65504, max: 65504, noNaN: true }), (x) => {
      const x32 = Math.fround(x);
      const y = float16Value(float16Bits(x32));
      // nearest: no representable half closer than y
      const bits = float16Bits(x32);
      for (const nb of [bits - 1, bits + 1]) {
        const alt = float16Value(nb & 0xffff);
        if (Number.isFinite(alt) && (Math.sign(alt) === Math.sign(y) || alt === 0)) {
          assert.ok(Math.abs(alt - x32) >= Math.abs(y - x32), `${x32}: ${y} but ${alt} is closer`);
        }
      }
    }),
    { numRuns: 2000 },
  );
  assert.equal(float16Bits(1 + 2 ** -11), float16Bits(1)); // tie -> even
  assert.equal(float16Bits(1 + 3 * 2 ** -11), float16Bits(1 + 2 ** -9)); // tie -> even (up)
  assert.equal(float16Value(float16Bits(2 ** -25)), 0); // tie at the smallest subnormal -> 0
  assert.equal(float16Value(float16Bits(65520)), Infinity);
});

test('float16 tensors (SSIM maps) round-trip within half precision', () => {
  fc.assert(
    fc.property(fc.float32Array({ minLength: 1, maxLength: 300, min: -1, max: 1, noNaN: true }), (data) => {
      const enc = encodeTensor({ dtype: 'float16', shape: [data.length], data });
      assert.equal(enc.data!.length, data.length * 2);
      const back = decodeTensor(throughWire(enc), { expectDtype: 'float16' });
      for (let i = 0; i < data.length; i++) assert.ok(Math.abs(back.data[i]! - data[i]!) <= 2 ** -11 * Math.max(Math.abs(data[i]!), 2 ** -14));
    }),
  );
  assert.throws(
    () => encodeTensor({ dtype: 'float16', shape: [2], data: Float32Array.of(1, 1e6) }, { field: 'ssim_map' }),
    /ssim_map: value 1000000 at flat index 1 overflows float16/,
  );
});

type Wire = { dtype: unknown; shape: unknown; data: unknown };
const validArb = fc
  .record({
    dtype: fc.constantFrom<DType>('float32', 'float16', 'uint8'),
    shape: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }),
  })
  .map(({ dtype, shape }) => encodeTensor({ dtype, shape, data: new Float32Array(size(shape)).fill(1) }));

const corruption = fc.oneof(
  fc.record({ kind: fc.constant('dtype' as const), v: fc.constantFrom('float64', 'FLOAT32', '', 'int8', 'bfloat16') }),
  fc.record({ kind: fc.constant('negdim' as const), v: fc.integer({ min: -1000, max: -1 }) }),
  fc.record({ kind: fc.constant('fracdim' as const), v: fc.constantFrom('1.5', 'x', '1e3', '') }),
  fc.record({ kind: fc.constant('bytes' as const), v: fc.integer({ min: -7, max: 7 }).filter((d) => d !== 0) }),
  fc.record({ kind: fc.constant('huge' as const), v: fc.integer({ min: 1 << 20, max: 1 << 30 }) }),
  fc.record({ kind: fc.constant('rank' as const), v: fc.integer({ min: 9, max: 12 }) }),
);

test('malformed tensors are refused with an error naming the field', () => {
  fc.assert(
    fc.property(validArb, corruption, (valid, c) => {
      const t: Wire = { dtype: valid.dtype, shape: [...(valid.shape as number[])], data: Buffer.from(valid.data as Buffer) };
      const shape = t.shape as unknown[];
      if (c.kind === 'dtype') t.dtype = c.v;
      else if (c.kind === 'negdim') shape[0] = String(c.v);
      else if (c.kind === 'fracdim') shape[shape.length - 1] = c.v;
      else if (c.kind === 'bytes') {
        const b = t.data as Buffer;
        t.data = c.v > 0 ? Buffer.concat([b, Buffer.alloc(c.v)]) : b.subarray(0, Math.max(0, b.length + c.v));
        if ((t.data as Buffer).length === b.length) return; // nothing to corrupt on a tiny tensor
      } else if (c.kind === 'huge') shape.push(String(c.v), String(c.v));
      else if (c.kind === 'rank') t.shape = new Array(c.v).fill('1');
      assert.throws(
        () => decodeTensor(t as never, { field: 'score_task.candidates', maxBytes: 1 << 20 }),
        (e: unknown) => e instanceof TensorError && e.field === 'score_task.candidates' && e.message.startsWith('score_task.candidates: '),
      );
    }),
    { numRuns: 500 },
  );
});

test('expectations, missing and non-finite tensors', () => {
  const t = encodeTensor({ dtype: 'float32', shape: [3, 2, 2], data: new Float32Array(12) });
  assert.throws(() => decodeTensor(t, { field: 'x', expectShape: [3, null] }), /x: shape \[3,2,2\] does not match the expected \[3,\*\]/);
  assert.throws(() => decodeTensor(t, { field: 'x', expectShape: [1, null, null] }), /does not match/);
  assert.deepEqual(decodeTensor(t, { expectShape: [3, null, null] }).shape, [3, 2, 2]);
  assert.throws(() => decodeTensor(t, { field: 'x', expectDtype: 'uint8' }), /x: dtype float32 is not accepted here/);
  assert.throws(() => decodeTensor(null, { field: 'rollout_task.items[0].image' }), /rollout_task.items\[0\].image: tensor is missing/);
  assert.equal(decodeOptionalTensor(null), undefined);
  assert.throws(() => encodeTensor({ dtype: 'float32', shape: [2], data: Float32Array.of(1, NaN) }, { field: 'action' }), /action: non-finite value NaN at flat index 1/);
  const inf = encodeTensor({ dtype: 'float32', shape: [1], data: Float32Array.of(Infinity) }, { allowNonFinite: true });
  assert.throws(() => decodeTensor(inf, { field: 'mean' }), /mean: non-finite/);
  assert.equal(decodeTensor(inf, { allowNonFinite: true }).data[0], Infinity);
  assert.throws(() => encodeTensor({ dtype: 'float32', shape: [3], data: new Float32Array(2) }, { field: 'f' }), /f: data has 2 elements, shape \[3\] needs 3/);
  // unaligned bytes (a subarray of a bigger wire buffer) decode correctly
  const big = Buffer.alloc(13);
  big.writeFloatLE(1.5, 1);
  big.writeFloatLE(-2, 5);
  big.writeFloatLE(3.25, 9);
  assert.deepEqual(Array.from(decodeTensor({ dtype: 'float32', shape: ['3'], data: big.subarray(1) }).data), [1.5, -2, 3.25]);
  // scalars and empty tensors
  assert.deepEqual(decodeTensor(encodeTensor({ dtype: 'float32', shape: [], data: Float32Array.of(7) })).data, Float32Array.of(7));
  assert.equal(decodeTensor(encodeTensor({ dtype: 'float16', shape: [0, 3], data: new Float32Array(0) })).data.length, 0);
});

test('encodeTensor share: float32 bytes are a view of the data (no copy), the same bytes as the copy', () => {
  const data = new Float32Array([1.5, -2, 0, 3.25, 1e-30, -0]);
  const sub = data.subarray(1, 5);
  const copied = encodeTensor({ dtype: 'float32', shape: [4], data: sub });
  const shared = encodeTensor({ dtype: 'float32', shape: [4], data: sub }, { share: true });
  assert.deepEqual(Buffer.from(shared.data as Uint8Array), Buffer.from(copied.data as Uint8Array));
  assert.equal((shared.data as Uint8Array).buffer, data.buffer); // a view of the caller's array
  assert.notEqual((copied.data as Uint8Array).buffer, data.buffer);
  // the validations still run
  assert.throws(() => encodeTensor({ dtype: 'float32', shape: [2], data: new Float32Array([1, NaN]) }, { share: true }), /non-finite value NaN at flat index 1/);
  assert.throws(() => encodeTensor({ dtype: 'float32', shape: [3], data: new Float32Array(2) }, { share: true }), /data has 2 elements/);
  // float16 and uint8 are converted whatever share says
  const h = encodeTensor({ dtype: 'float16', shape: [2], data: new Float32Array([0.5, 1]) }, { share: true });
  assert.equal((h.data as Uint8Array).length, 4);
  assert.deepEqual(Array.from(decodeTensor(throughWire(shared)).data), Array.from(sub));
});

test('firstNonFinite (the finiteness check read as bits, four values a test): the first infinity or NaN at every position and length, none in finite extremes', () => {
  const finite = [0, -0, 1, -1, 3.4028234663852886e38, -3.4028234663852886e38, 1e-45, -1e-45, 1.1754943508222875e-38, 65504];
  for (let n = 0; n <= 13; n++) {
    const base = Float32Array.from({ length: n }, (_, i) => finite[i % finite.length]!);
    assert.equal(firstNonFinite(base), -1, `finite, length ${n}`);
    for (let at = 0; at < n; at++) {
      for (const bad of [NaN, Infinity, -Infinity]) {
        const d = base.slice();
        d[at] = bad;
        if (at + 2 < n) d[at + 2] = bad; // a later one too: the first is named
        assert.equal(firstNonFinite(d), at, `${bad} at ${at} of ${n}`);
        assert.throws(() => encodeTensor({ dtype: 'float32', shape: [n], data: d }, { field: 'f' }), new RegExp(`f: non-finite value ${bad} at flat index ${at}$`));
      }
    }
  }
  // a view at an offset is read from its own start
  const buf = new Float32Array([NaN, 1, 2, 3, 4, 5, Infinity]);
  assert.equal(firstNonFinite(buf.subarray(1, 6)), -1);
  assert.equal(firstNonFinite(buf.subarray(1)), 5);
  // NaNs with payloads and either sign
  const bits = new Uint32Array([0x7f800001, 0xffc00000, 0x7fffffff, 0xff800000]);
  for (let i = 0; i < 4; i++) assert.equal(firstNonFinite(new Float32Array(bits.buffer, i * 4, 4 - i)), 0);
});
