// onnxruntime threads per operator (--threads, per role): the policy, GRPO and reward graphs give the same
// bits with 1, 2 and 3 threads, so choosing a role's share of the cores never changes results; bad
// settings are refused by name; the local run shares the cores among its roles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { loadConfig } from '../../lib/config/index.ts';
import { GraphSession, intraOpThreads, setIntraOpThreads, THREADS_ENV } from '../../lib/graph/runtime.ts';
import { grpoModel, policyModel, policySpecOf, rewardModel } from '../../lib/models/bundle.ts';
import { initPolicyParams } from '../../lib/models/policy.ts';
import { paramFeeds } from '../../lib/models/feeds.ts';
import { standardNormal } from '../../lib/data/random.ts';
import { roleThreads } from '../../lib/local/local-run.ts';
import type { Feeds, Fetches } from '../../lib/graph/runtime.ts';

const SIZE = 32;
const N = 8;

function digest(...fetches: Fetches[]): string {
  const h = createHash('sha256');
  for (const f of fetches) for (const k of Object.keys(f).sort()) h.update(f[k].data);
  return h.digest('hex');
}

for (const mode of ['scalar', 'dense'] as const) {
  test(`${mode}: policy, GRPO and reward graph outputs are bit-identical with 1, 2 and 3 threads per operator`, async () => {
    const config = loadConfig(undefined, [`data.size=${SIZE}`, `grpo.advantageMode=${mode}`]);
    const params = initPolicyParams(policySpecOf(config), 0);
    for (const p of params.values()) if (p.shape.length) p.data.set(standardNormal(p.data.length, 3).map((v) => v * 0.05));
    const dims = [N, 3, SIZE, SIZE];
    const pix = N * 3 * SIZE * SIZE;
    const image = { data: Float32Array.from(standardNormal(pix, 1), (v) => 0.5 + 0.1 * v), dims };
    const { bytes: reward } = await rewardModel({ height: SIZE, width: SIZE }, config.reward);
    const digests: string[] = [];
    for (const threads of [1, 2, 3]) {
      const policy = await GraphSession.create(policyModel(config), { intraOpThreads: threads });
      const grpo = await GraphSession.create(grpoModel(config), { intraOpThreads: threads });
      const scorer = await GraphSession.create(reward, { intraOpThreads: threads });
      const roll = await policy.run({ ...paramFeeds(params), image, noise: { data: standardNormal(pix, 2), dims } });
      const feeds: Feeds = {
        ...paramFeeds(params),
        image,
        action: { data: roll.action.data, dims },
        logp_old: mode === 'dense' ? { data: roll.logp_map.data, dims } : { data: roll.logp.data, dims: [N] },
        advantage: { data: standardNormal(N, 4), dims: [N] },
        ref_mean: { data: roll.mean.data, dims },
        clip_low: { data: Float32Array.of(0.2), dims: [] },
        clip_high: { data: Float32Array.of(0.28), dims: [] },
        dual_clip: { data: Float32Array.of(3), dims: [] },
        beta: { data: Float32Array.of(0.01), dims: [] },
      };
      if (mode === 'dense') feeds.advantage_map = { data: standardNormal(N * 3 * (SIZE - 10) ** 2, 5), dims: [N, 3, SIZE - 10, SIZE - 10] };
      const step = await grpo.run(feeds);
      const scores = await scorer.run({ candidate: { data: roll.action.data.map((v) => Math.min(1, Math.max(0, v))), dims }, reference: image });
      digests.push(digest(roll, step, scores));
      for (const s of [policy, grpo, scorer]) await s.release();
    }
    assert.equal(new Set(digests).size, 1, `digests by thread count: ${digests.join(' ')}`);
  });
}

test('threads per operator: bad values are refused by name; the process setting wins over the environment', async () => {
  assert.throws(() => setIntraOpThreads(-1), /--threads: .* integer >= 0/);
  assert.throws(() => setIntraOpThreads(1.5), /--threads/);
  const saved = process.env[THREADS_ENV];
  try {
    process.env[THREADS_ENV] = 'two';
    assert.throws(() => intraOpThreads(), new RegExp(`${THREADS_ENV}: .* got NaN`));
    process.env[THREADS_ENV] = '2';
    assert.equal(intraOpThreads(), 2);
    setIntraOpThreads(1);
    assert.equal(intraOpThreads(), 1);
  } finally {
    setIntraOpThreads(0);
    if (saved === undefined) delete process.env[THREADS_ENV];
    else process.env[THREADS_ENV] = saved;
  }
});

test('local run: the cores are shared among the roles (the learner twice the workers\' share), explicit settings win, the environment variable opts out', () => {
  const saved = process.env[THREADS_ENV];
  delete process.env[THREADS_ENV];
  try {
    assert.deepEqual(roleThreads({}, 2), { learner: 2, 'rollout-worker': 1, 'reward-worker': 1 });
    assert.deepEqual(roleThreads({}, 1), { learner: 1, 'rollout-worker': 1, 'reward-worker': 1 });
    assert.deepEqual(roleThreads({ rolloutWorkers: 2, rewardWorkers: 1 }, 16), { learner: 8, 'rollout-worker': 4, 'reward-worker': 4 });
    assert.deepEqual(roleThreads({ threads: { learner: 1 } }, 2), { learner: 1, 'rollout-worker': 1, 'reward-worker': 1 });
    assert.deepEqual(roleThreads({ threads: { learner: 2 } }, 2), { learner: 2, 'rollout-worker': 1, 'reward-worker': 1 });
    process.env[THREADS_ENV] = '3';
    assert.deepEqual(roleThreads({}, 2), {});
  } finally {
    if (saved === undefined) delete process.env[THREADS_ENV];
    else process.env[THREADS_ENV] = saved;
  }
});
