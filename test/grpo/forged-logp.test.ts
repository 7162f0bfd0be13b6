// review25c F2: the learner trusted a rollout worker's logp_old. One row of 8 with a negative advantage and a
// logp_old a few nats below the truth had an unbounded ratio and, after the gradient-norm clip, took the whole step
// (the policy's mean moved 0.5008 -> 0.6142 in 5 steps against 0.4960 honest); logp_old = -3e38 made the loss
// infinite and the batch was skipped. Now:
//   - dual clip (grpo.dualClip = c): the forged row's weight is at most c times its honest weight (a lie of
//     log c nats or less), and beyond that the row passes no gradient at all;
//   - the same-version check (grpo.logpTolerance): at the learner's own version (every row at maxStaleness 0) the
//     forged row is excluded from the step, as if its advantage were 0, and a batch with logp_old = -3e38 trains.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, type RunConfig } from '../../lib/config/index.ts';
import { initPolicyParams } from '../../lib/models/policy.ts';
import { policySpecOf } from '../../lib/models/bundle.ts';
import { PolicyRunner } from '../../lib/models/runner.ts';
import { PolicyTrainer, type GrpoInputs } from '../../lib/models/trainer.ts';
import { cloneTensorMap, type TensorMap } from '../../lib/checkpoint/tensors.ts';
import { grpoHyper } from '../../lib/grpo/algorithm.ts';
import { grpoUpdate } from '../../lib/grpo/update.ts';
import { EXCLUDED_LOGP_OLD, excludeRows, LOGP_TOLERANCE_DEFAULT, offPolicyRows, sameVersionScreen } from '../../lib/grpo/logp-check.ts';
import { testRandom } from '../graph/gradcheck.ts';

const S = 16;
const N = 8;
const P = 3 * S * S;
const settings = (mode: 'scalar' | 'dense') => [`data.size=${S}`, 'model.width=8', 'model.depth=2', 'model.logStd=-1', 'optim.lr=0.001', `grpo.advantageMode=${mode}`, 'grpo.beta=0'];

async function fixture(config: RunConfig) {
  const rand = testRandom(3);
  const images = Float32Array.from({ length: N * P }, () => 0.3 + 0.4 * rand());
  const noise = Float32Array.from({ length: N * P }, () => rand() * 2 - 1);
  const base = initPolicyParams(policySpecOf(config), 1);
  const runner = await PolicyRunner.create(config);
  const roll = await runner.run(base, images, noise, N);
  await runner.release();
  // the attacker's row 0: an action darker than its mean (it scores worst: advantage -1)
  const actions = roll.action.slice();
  for (let k = 0; k < P; k++) actions[k] = roll.mean[k]! - 0.5;
  const advantages = Float32Array.from({ length: N }, (_, i) => (i % 2 ? 1 : -1));
  return { images, base, roll, actions, advantages };
}

/** The learner's own log-density of each row (scalar [N], or per element in dense mode) for `actions`. */
async function trueLogp(config: RunConfig, params: TensorMap, images: Float32Array, actions: Float32Array): Promise<Float32Array> {
  const runner = await PolicyRunner.create(config);
  // action = mean + sigma * noise: the noise that gives `actions` under params
  const { mean } = await runner.run(params, images, new Float32Array(images.length), N);
  const sigma = Math.exp(-1);
  const out = await runner.run(params, images, Float32Array.from(actions, (a, i) => (a - mean[i]!) / sigma), N);
  await runner.release();
  return config.grpo.advantageMode === 'dense' ? out.logpMap : out.logp;
}

/**
 * Parameters after `steps` GRPO updates from `base` (the learner's update; with `checked`, its same-version screen).
 * `batchAt` gives each step's batch from the parameters of that step: with a fresh logp_old, as workers at that
 * version would send it, every row is at the learner's version.
 */
async function train(config: RunConfig, base: TensorMap, batchAt: (params: TensorMap) => Promise<Omit<GrpoInputs, 'refMean'>>, steps: number, checked = false) {
  const params = cloneTensorMap(base);
  const trainer = PolicyTrainer.create(config, params);
  const ref = { params: base, runner: () => { throw new Error('beta 0: no reference forward'); } };
  const excluded: number[][] = [];
  const applied: boolean[] = [];
  for (let k = 0; k < steps; k++) {
    const batch = await batchAt(params);
    const screen = checked
      ? sameVersionScreen({ batch, rowVersions: Array(N).fill(k), version: k, tolerance: config.grpo.logpTolerance, excluded: (rows) => excluded.push(rows) })
      : undefined;
    const r = await grpoUpdate(trainer, ref, batch, grpoHyper(config), screen);
    applied.push(r.step.applied);
  }
  await trainer.release();
  return { params, excluded, applied };
}

function maxDiff(a: TensorMap, b: TensorMap): number {
  let d = 0;
  for (const [k, t] of a) t.data.forEach((v, i) => (d = Math.max(d, Math.abs(v - b.get(k)!.data[i]!))));
  return d;
}


test('dual clip: a logp_old lied down by more than log c nats (or to -3e38) gives its row no gradient: 5 steps as if its advantage were 0', async () => {
  const config = loadConfig(undefined, settings('scalar'));
  const { images, base, actions, advantages } = await fixture(config);
  const logp = await trueLogp(config, base, images, actions);
  // the batch as the reproduction sent it, five times (logp_old from the first version: staleness grows by one a step)
  const withoutRow = await train(config, base, async () => ({ n: N, images, actions, logpOld: logp, advantages: Float32Array.from(advantages, (a, i) => (i === 0 ? 0 : a)) }), 5);
  // -3e38: a finite float32 whose ratio overflowed (loss infinite, then 0 * inf = NaN gradients: the batch was skipped)
  for (const lie of [10, 30, 60, 3e38]) {
    const forged = await train(config, base, async () => ({ n: N, images, actions, logpOld: Float32Array.from(logp, (v, i) => (i === 0 ? (lie === 3e38 ? -3e38 : v - lie) : v)), advantages }), 5);
    assert.deepEqual(forged.applied, [true, true, true, true, true], `lie ${lie}: every step applied`);
    // before: the forged row took the step (mean of the policy's mean 0.5008 -> 0.6142, honest 0.4960)
    const d = maxDiff(forged.params, withoutRow.params);
    assert.ok(d <= 1e-6, `lie ${lie} nats: parameters differ from the batch without the row by ${d}`);
  }
});

test('dual clip: below log c nats the forged row weighs at most c times its honest weight', async () => {
  const config = loadConfig(undefined, settings('scalar'));
  const { images, base, actions, advantages } = await fixture(config);
  const logp = await trueLogp(config, base, images, actions);
  const w = 2.9; // a ratio just below c = 3
  const trainer = PolicyTrainer.create(config, cloneTensorMap(base));
  const hyper = grpoHyper(config);
  const batch = { n: N, images, actions, refMean: images };
  const lied = await trainer.grpoForward({ ...batch, logpOld: Float32Array.from(logp, (v, i) => (i === 0 ? v - Math.log(w) : v)), advantages }, hyper);
  const weighted = await trainer.grpoForward({ ...batch, logpOld: logp, advantages: Float32Array.from(advantages, (a, i) => (i === 0 ? w * a : a)) }, hyper);
  await trainer.release();
  for (const name of Object.keys(lied).filter((k) => k.startsWith('grad.'))) {
    lied[name]!.data.forEach((v, i) => {
      const u = weighted[name]!.data[i]!;
      assert.ok(Math.abs(v - u) <= 1e-4 * Math.max(1e-3, Math.abs(u)), `${name}[${i}]: lied ${v}, honest row weighted ${w}: ${u}`);
    });
  }
});

for (const mode of ['scalar', 'dense'] as const) {
  test(`same-version check (${mode}): a forged row at the learner's version is excluded; an honest batch trains as before`, async () => {
    const config = loadConfig(undefined, settings(mode));
    assert.equal(config.grpo.logpTolerance, LOGP_TOLERANCE_DEFAULT);
    const { images, base, roll, actions, advantages } = await fixture(config);
    const advantageMap = mode === 'dense' ? new Float32Array(N * 3 * (S - 10) * (S - 10)) : undefined;
    const common = { n: N, images, actions, advantages, ...(advantageMap ? { advantageMap } : {}) };
    const per = mode === 'dense' ? P : 1;
    const honestAt = async (params: TensorMap) => ({ ...common, logpOld: await trueLogp(config, params, images, actions) });

    // honest: nothing excluded, the same parameters as without the check
    const honest = await train(config, base, honestAt, 3, true);
    const unchecked = await train(config, base, honestAt, 3);
    assert.deepEqual(honest.excluded, []);
    assert.equal(maxDiff(honest.params, unchecked.params), 0, 'an honest batch trains exactly as before');

    // row 0 zeroed: the reference for an excluded row
    const without = await train(config, base, async (params) => ({ ...(await honestAt(params)), advantages: Float32Array.from(advantages, (a, i) => (i === 0 ? 0 : a)) }), 3);
    // a lie of 0.5 nats (ratio 1.65, under c: dual clip alone lets it weigh 1.65x), a lie past c, an infinite ratio
    for (const lie of [0.5, 10, 3e38]) {
      const forgedAt = async (params: TensorMap) => {
        const b = await honestAt(params);
        return { ...b, logpOld: b.logpOld.map((v, k) => (k < per ? (lie === 3e38 ? -3e38 : v - lie) : v)) };
      };
      const r = await train(config, base, forgedAt, 3, true);
      assert.deepEqual(r.excluded, [[0], [0], [0]], `lie ${lie}: row 0 excluded at every step`);
      assert.deepEqual(r.applied, [true, true, true], `lie ${lie}: every step applied`);
      const d = maxDiff(r.params, without.params);
      assert.ok(d <= 1e-6, `lie ${lie}: parameters differ from the batch without row 0 by ${d}`);
    }
    // an older behaviour version is not checked (the dual clip bounds it): same-version rows only
    const stale = sameVersionScreen({ batch: { ...common, logpOld: roll.logp }, rowVersions: Array(N).fill(0), version: 1, tolerance: 1e-3, excluded: () => assert.fail('nothing to exclude') });
    assert.equal(stale({ logp: Float32Array.from(roll.logp, (v) => v + 5), ratio: new Float32Array(N).fill(100) }), undefined);
  });
}

test('offPolicyRows: per-row mean and, per element, the mean ratio; excludeRows zeroes the action and makes the ratio 0', () => {
  const logp = [-1, -2];
  // row 1's elements lie by +-0.5 around the truth: its mean agrees, its mean ratio (cosh 0.5 = 1.13) does not
  const logpOld = [-1, -1, -1, -2.5, -1.5, -2];
  const ratio = [1, (Math.exp(0.5) + Math.exp(-0.5) + 1) / 3];
  assert.deepEqual(offPolicyRows({ logp, ratio, logpOld, onPolicy: [true, true], tolerance: 1e-3 }), [1]);
  assert.deepEqual(offPolicyRows({ logp, ratio, logpOld, onPolicy: [true, false], tolerance: 1e-3 }), []);
  assert.deepEqual(offPolicyRows({ logp: [-1, NaN], ratio: [1, 1], logpOld: [-1, -1.0005, -0.9995, -2, -2, -2], onPolicy: [true, true], tolerance: 1e-3 }), [1], 'a non-finite logp disagrees');
  const x = excludeRows({ advantages: Float32Array.of(1, -2), advantageMap: Float32Array.of(1, 2, 3, 4), logpOld: Float32Array.from(logpOld) }, [1], 2);
  assert.deepEqual([...x.advantages], [1, 0]);
  assert.deepEqual([...x.advantageMap!], [1, 2, 0, 0]);
  assert.deepEqual([...x.logpOld], [-1, -1, -1, EXCLUDED_LOGP_OLD, EXCLUDED_LOGP_OLD, EXCLUDED_LOGP_OLD].map(Math.fround));
  // the flow family: row 2 is a step of action 0; the whole action's advantage goes, only the row's logp_old
  const f = excludeRows({ advantages: Float32Array.of(1, -2), logpOld: Float32Array.of(-1, -2, -3) }, [2], 3, (row) => [1, 1, 0][row]!);
  assert.deepEqual([...f.advantages], [0, -2]);
  assert.deepEqual([...f.logpOld], [-1, -2, Math.fround(EXCLUDED_LOGP_OLD)]);
});
