import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addStandardNormalFast, fillStandardNormal, fillStandardNormalFast, hashSeed, hashUnit, rng, standardNormal, type SeedPart } from '../../lib/data/random.ts';

function moments(a: Float32Array): { mean: number; variance: number } {
  let s = 0, s2 = 0;
  for (const v of a) { s += v; s2 += v * v; }
  const mean = s / a.length;
  return { mean, variance: s2 / a.length - mean * mean };
}

test('hashSeed is stable, typed and order-sensitive', () => {
  assert.equal(hashSeed(1, 'a', 2), hashSeed(1, 'a', 2));
  const values = [
    hashSeed(), hashSeed(0), hashSeed('0'), hashSeed(0n), hashSeed(1), hashSeed(1, 2), hashSeed(2, 1),
    hashSeed('a', 'bc'), hashSeed('ab', 'c'), hashSeed(2 ** 40), hashSeed(2 ** 40 + 1), hashSeed(0.5),
  ];
  assert.equal(new Set(values).size, values.length);
  for (const v of values) assert.ok(Number.isInteger(v) && v >= 0 && v < 2 ** 32);
  const u = hashUnit('x', 3);
  assert.ok(u >= 0 && u < 1);
});

test('rng: same seed, same sequence; ranges hold', () => {
  const a = rng(42), b = rng(42), c = rng(43);
  const sa = Array.from({ length: 50 }, () => a.u32());
  assert.deepEqual(sa, Array.from({ length: 50 }, () => b.u32()));
  assert.notDeepEqual(sa, Array.from({ length: 50 }, () => c.u32()));
  const r = rng('any seed');
  const seen = new Set<number>();
  for (let k = 0; k < 2000; k++) {
    const f = r.float();
    assert.ok(f >= 0 && f < 1);
    const n = r.int(3, 7);
    assert.ok(Number.isInteger(n) && n >= 3 && n <= 7);
    seen.add(n);
  }
  assert.deepEqual([...seen].sort(), [3, 4, 5, 6, 7]); // both ends inclusive
  assert.deepEqual(r.shuffle([1, 2, 3, 4, 5]).sort(), [1, 2, 3, 4, 5]);
});

test('fork gives independent streams without advancing the parent', () => {
  const p = rng(7);
  const f1 = p.fork('noise', 3).u32();
  const first = p.u32();
  assert.equal(rng(7).u32(), first);
  assert.equal(rng(7).fork('noise', 3).u32(), f1);
  assert.notEqual(rng(7).fork('noise', 4).u32(), f1);
});

test('standard normals: deterministic, mean 0, variance 1', () => {
  for (const fill of [fillStandardNormal, fillStandardNormalFast]) {
    const a = fill(new Float32Array(40001), 5);
    const b = fill(new Float32Array(40001), 5);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, fill(new Float32Array(40001), 6));
    const { mean, variance } = moments(a);
    assert.ok(Math.abs(mean) < 0.02, `mean ${mean}`);
    assert.ok(Math.abs(variance - 1) < 0.03, `variance ${variance}`);
    const tail = a.filter((v) => Math.abs(v) > 1.96).length / a.length; // ~5%
    assert.ok(tail > 0.04 && tail < 0.06, `tail ${tail}`);
    assert.ok(a.every(Number.isFinite));
  }
  assert.deepEqual(standardNormal(10, rng(1)), fillStandardNormal(new Float32Array(10), 1));
});

test('fillStandardNormal from a seed: the bytes of fillStandardNormal from rng(seed) (its inlined generator), all seed kinds and lengths', () => {
  const r = rng(11);
  const seeds: SeedPart[] = [0, 1, 0xffffffff, 2 ** 40 + 3, -5, 0.5, 'noise', 2n ** 63n + 7n, 18446744073709551615n];
  for (let c = 0; c < 40; c++) seeds.push(r.u32());
  for (const [k, seed] of seeds.entries()) {
    for (const n of [0, 1, 2, 3, 3072 + (k % 3)]) {
      const fromSeed = fillStandardNormal(new Float32Array(n), seed);
      const fromRng = fillStandardNormal(new Float32Array(n), rng(seed));
      assert.deepEqual(new Uint8Array(fromSeed.buffer), new Uint8Array(fromRng.buffer), `seed ${String(seed)}, n ${n}`);
    }
  }
  // a subarray is filled in place, its neighbours untouched
  const buf = new Float32Array(10).fill(7);
  fillStandardNormal(buf.subarray(3, 8), 4);
  assert.deepEqual(Array.from(buf.subarray(3, 8)), Array.from(standardNormal(5, 4)));
  assert.deepEqual([...buf.subarray(0, 3), ...buf.subarray(8)], [7, 7, 7, 7, 7]);
});

test('addStandardNormalFast: the bytes of src + scale * fillStandardNormalFast(rng(seed)), odd and even lengths', () => {
  const r = rng(9);
  for (let c = 0; c < 40; c++) {
    const n = c < 4 ? c : r.int(1, 5000);
    const src = new Uint8Array(n);
    for (let k = 0; k < n; k++) src[k] = r.int(0, 255);
    const scale = c % 5 === 0 ? 75 * [0.23, 0.45, 0.9][c % 3] : 200 * r.float();
    const seed = c % 7 === 0 ? `seed ${c}` : r.u32();
    const noise = fillStandardNormalFast(new Float32Array(n), rng(seed));
    const want = new Uint8ClampedArray(n);
    for (let k = 0; k < n; k++) want[k] = src[k] + scale * noise[k];
    const got = addStandardNormalFast(src, scale, seed, new Uint8ClampedArray(n));
    assert.deepEqual(got, want, `length ${n} scale ${scale} seed ${seed}`);
  }
  assert.throws(() => addStandardNormalFast(new Uint8Array(3), 1, 1, new Uint8ClampedArray(2)), /out has 2 elements, src 3/);
});
