// initialParamsWithNoiseOf (lib/models/bundle.ts): the inputs of gpu-check and bisect (scripts/gpu) and
// bench/grpo-profile.ts, one definition. Every all-zero tensor of the initial parameters gets 0.01 x standard normal,
// the k-th drawn with seed + k; every other tensor is the initial one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../lib/config/index.ts';
import { initialParamsOf, initialParamsWithNoiseOf } from '../../lib/models/bundle.ts';
import { standardNormal } from '../../lib/data/random.ts';

for (const family of ['gaussian', 'flow'] as const) {
  test(`initialParamsWithNoiseOf (${family}): no all-zero tensor left, zero tensors drawn seed, seed + 1, ...; the rest untouched`, () => {
    const config = parseConfig({ run: { id: 'noise', seed: 5 }, data: { size: 16 }, model: { family, width: 4, depth: 1 } });
    const init = initialParamsOf(config);
    const zero = [...init].filter(([, p]) => p.data.length && p.data.every((v) => v === 0)).map(([k]) => k);
    assert.ok(zero.length > 0, 'the initial parameters have an all-zero tensor (else this test shows nothing)');
    const got = initialParamsWithNoiseOf(config, 40);
    assert.deepEqual([...got.keys()], [...init.keys()]);
    for (const [name, p] of got) {
      const k = zero.indexOf(name);
      const want = k < 0 ? init.get(name)!.data : standardNormal(p.data.length, 40 + k).map((v) => v * 0.01);
      assert.deepEqual(p.shape, init.get(name)!.shape);
      assert.ok(Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength)), name);
    }
    // gpu-check's inputs: the function at its default seed (100, the seed gpu-check's own loop used before it was shared)
    const check = initialParamsWithNoiseOf(config);
    const def = initialParamsWithNoiseOf(config, 100);
    for (const [name, p] of check) assert.deepEqual(p.data, def.get(name)!.data, name);
  });
}
