// The KL reference forward runs once per distinct image of a GRPO batch (lib/grpo/update.ts referenceMean): its
// means are the same bytes as the policy forward over every row, so the learner's and the single-process loop's
// steps (and checkpoints) are unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../lib/config/index.ts';
import { setIntraOpThreads } from '../../lib/graph/runtime.ts';
import { policySpecOf } from '../../lib/models/bundle.ts';
import { initPolicyParams } from '../../lib/models/policy.ts';
import { PolicyRunner } from '../../lib/models/runner.ts';
import { standardNormal } from '../../lib/data/random.ts';
import { referenceMean } from '../../lib/grpo/update.ts';

const SIZE = 32;

test('referenceMean: the forward over distinct images gives the bytes of the forward over all rows (1 and 2 threads)', async () => {
  const config = loadConfig(undefined, [`data.size=${SIZE}`]);
  const params = initPolicyParams(policySpecOf(config), 0);
  // weights away from their initial values, so that every layer shapes the output
  for (const p of params.values()) if (p.shape.length) p.data.set(standardNormal(p.data.length, 3).map((v) => v * 0.05));
  const px = 3 * SIZE * SIZE;
  // 3 groups of 4 copies, a lone image, then a copy of the first group's image that is not next to it
  const distinct = [0, 1, 2, 3].map((k) => Float32Array.from(standardNormal(px, 10 + k), (v) => 0.5 + 0.1 * v));
  const rows = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 0];
  const images = new Float32Array(rows.length * px);
  rows.forEach((k, i) => images.set(distinct[k]!, i * px));
  try {
    for (const threads of [1, 2]) {
      setIntraOpThreads(threads);
      const runner = await PolicyRunner.create(config);
      const full = (await runner.run(params, images, new Float32Array(images.length), rows.length)).mean;
      let calls = 0;
      const counted = { run: (...a: Parameters<PolicyRunner['run']>) => ((calls = a[3]), runner.run(...a)) };
      const got = await referenceMean(counted, params, images, rows.length);
      assert.equal(calls, 5, 'one forward row per run of equal consecutive images');
      assert.ok(Buffer.from(got.buffer).equals(Buffer.from(full.buffer)), `${threads} threads: the means differ from the full forward's`);
      assert.ok(!Buffer.from(got.slice(0, px).buffer).equals(Buffer.from(got.slice(4 * px, 5 * px).buffer)), 'distinct images give distinct means');
      await runner.release();
    }
  } finally {
    setIntraOpThreads(0);
  }
  await assert.rejects(referenceMean({ run: async () => { throw new Error('not reached'); } }, params, new Float32Array(10), 3), /10 image values do not split into n = 3 rows/);
});
