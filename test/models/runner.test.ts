// PolicyRunner.sample: the rollout worker's policy call fetches only action and logp (and logp_map when asked),
// with run()'s values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../lib/config/index.ts';
import { initialParamsOf } from '../../lib/models/bundle.ts';
import { PolicyRunner } from '../../lib/models/runner.ts';
import { standardNormal } from '../../lib/data/random.ts';
import { testRandom } from '../graph/gradcheck.ts';

test('PolicyRunner.sample: run()\'s action, logp and (when asked) logp_map bytes, the rest not fetched', async () => {
  const config = loadConfig(undefined, ['data.size=16', 'model.width=4', 'model.depth=1']);
  const runner = await PolicyRunner.create(config);
  try {
    const params = initialParamsOf(config);
    const rand = testRandom(3);
    const n = 5;
    const per = 3 * 16 * 16;
    const one = Float32Array.from({ length: per }, () => rand());
    const images = new Float32Array(n * per);
    for (let i = 0; i < n; i++) images.set(i < 3 ? one : Float32Array.from({ length: per }, () => rand()), i * per);
    const noise = standardNormal(n * per, 8);
    const full = await runner.run(params, images, noise, n);
    const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    for (const withMap of [false, true]) {
      const s = await runner.sample(params, images, noise, n, withMap);
      assert.ok(bytes(s.action).equals(bytes(full.action)), 'action');
      assert.ok(bytes(s.logp).equals(bytes(full.logp)), 'logp');
      if (withMap) assert.ok(bytes(s.logpMap!).equals(bytes(full.logpMap)), 'logp_map');
      else assert.equal(s.logpMap, undefined);
      assert.deepEqual(Object.keys(s).sort(), withMap ? ['action', 'logp', 'logpMap'] : ['action', 'logp']);
    }
  } finally {
    await runner.release();
  }
});
