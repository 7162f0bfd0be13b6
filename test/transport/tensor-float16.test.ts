// encodeTensor's float16 path (lib/transport/tensor.ts float16Into, round 11): the bytes it writes are, value by
// value, float16Bits little-endian (the scalar reference), for every binary16 value, float32s around each rounding
// boundary, random bit patterns, and non-finite values when allowed; its overflow error names the first index.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeTensor, encodeTensor, float16Bits, float16Value, TensorError } from '../../lib/transport/tensor.ts';

/** The bytes float16Bits gives, value by value, little-endian. */
function reference(values: Float32Array): Buffer {
  const out = Buffer.alloc(values.length * 2);
  values.forEach((v, i) => out.writeUInt16LE(float16Bits(v), i * 2));
  return out;
}

function encoded(values: Float32Array, allowNonFinite = false): Buffer {
  return Buffer.from(encodeTensor({ dtype: 'float16', shape: [values.length], data: values }, { allowNonFinite }).data as Uint8Array);
}

test('float16 encode: every binary16 value and its float32 neighbours give float16Bits\' bytes', () => {
  const vals: number[] = [];
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) === 0x7c00) continue; // infinities and NaNs: the next test
    f[0] = float16Value(h);
    const x = u[0]!;
    // the value, the float32s next to it, and the ties halfway to the next binary16 (the rounding cases)
    for (const d of [0, 1, -1, 0x1000, 0x0fff, 0x1001, -0x1000, 0x2000]) {
      u[0] = (x + d) >>> 0;
      if (Number.isFinite(f[0]!) && Math.abs(f[0]!) < 65520) vals.push(f[0]!);
    }
  }
  const values = Float32Array.from(vals);
  assert.ok(values.length > 400_000);
  assert.deepEqual(encoded(values), reference(values));
});

test('float16 encode: random float32 bit patterns, subnormals and non-finite values (allowed) give float16Bits\' bytes', () => {
  let seed = 12345;
  const next = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0);
  const bits = new Uint32Array(200_000).map(() => next());
  const values = new Float32Array(bits.buffer);
  values.set([NaN, -NaN, Infinity, -Infinity, 65504, 65519.99, 65520, -65520, 1e-8, -1e-8, 2 ** -25, 2 ** -24 * 1.5, 0, -0], 0);
  assert.deepEqual(encoded(values, true), reference(values));
  // a view at an offset of its buffer reads its own values
  const view = values.subarray(7, 1007);
  assert.deepEqual(encoded(view, true), reference(view));
});

test('float16 encode: a value over 65504 is refused at its index unless non-finite values are allowed', () => {
  const values = Float32Array.from([1, 2, 65504, 70000, 1e6]);
  assert.throws(() => encoded(values), (e: unknown) => e instanceof TensorError && /value 70000 at flat index 3 overflows float16/.test(e.message));
  assert.equal(encoded(values, true).readUInt16LE(6), 0x7c00);
});

test('float16 decode: every bit pattern gives float16Value, read at an even offset (16-bit reads) and an odd one (bytes); a non-finite one is refused at its index', () => {
  const n = 0x10000;
  for (const offset of [0, 1, 2, 3]) {
    const bytes = Buffer.alloc(n * 2 + offset).subarray(offset);
    for (let h = 0; h < n; h++) bytes.writeUInt16LE(h, h * 2);
    const t = decodeTensor({ dtype: 'float16', shape: [n], data: bytes }, { allowNonFinite: true });
    for (let h = 0; h < n; h++) assert.ok(Object.is(t.data[h], Math.fround(float16Value(h))) || (Number.isNaN(t.data[h]) && Number.isNaN(float16Value(h))), `bits ${h} at offset ${offset}`);
    const some = Buffer.alloc(8 + offset).subarray(offset);
    [0x3c00, 0xbc00, 0x7c00, 0x7e00].forEach((h, i) => some.writeUInt16LE(h, i * 2));
    assert.throws(() => decodeTensor({ dtype: 'float16', shape: [4], data: some }, { field: 'ssim_map' }), /ssim_map: non-finite value Infinity at flat index 2/);
  }
});
