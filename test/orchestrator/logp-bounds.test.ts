// A rollout's logp is a double on the wire, but the batch carries it as float32: review25c sent logp = 1e300 (finite,
// so it was accepted), the batch's logp_old held Infinity, encoding it threw inside LearnerLink.enqueue and the whole
// run failed, naming neither the field nor the worker (and again after every restart). Now the result is refused when
// it is decoded (a bad_result: the task is retried elsewhere) unless its logp is a log-density the policy's Gaussian
// can give (lib/grpo/logp-bounds.ts), honest values from the real policy graph pass, and a group that still cannot
// be encoded is dropped, not the run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../lib/config/index.ts';
import { encodeTensor, type RolloutResult__Output, type WorkerMessage__Output } from '../../lib/transport/index.ts';
import { policyLogStdRange } from '../../lib/grpo/logp-bounds.ts';
import { splitEncodable } from '../../orchestrator/grpo-groups.ts';
import { decodeRolloutResult } from '../../orchestrator/results.ts';
import { fakeSession, until } from '../helpers/fake-session.ts';
import { testCoordinator } from '../helpers/coordinator.ts';
import { TINY_H, TINY_N, TINY_PIX, tinyRollout } from '../helpers/tiny-rollout.ts';

const H = 16;
const G = 2;
const config = (over: Record<string, unknown> = {}) => parseConfig({
  run: { id: 'logp', seed: 1 }, data: { size: H, source: { kind: 'procedural', count: 16 } }, model: { width: 4, depth: 1, ...over },
  sft: { steps: 0 }, grpo: { steps: 1, groupSize: G, samplesPerBatch: 1, maxStaleness: 0, advantageMode: 'scalar' },
});
const img = (v: number) => encodeTensor({ dtype: 'float32', shape: [3, H, H], data: new Float32Array(3 * H * H).fill(v) }) as never;

function result(logps: number[], maps?: Float32Array[]): RolloutResult__Output {
  return {
    task_id: 'logp-r0-x', attempt: 1, policy_version: 0, compute_ms: 0,
    items: logps.map((logp, g) => ({
      sample_id: 's', group_index: g, action: img(0.5), mean: null, logp, flow_steps: [],
      logp_map: maps ? encodeTensor({ dtype: 'float32', shape: [3, H, H], data: maps[g]! }) as never : null,
    })),
  };
}

test('a logp no Gaussian of the policy can give is refused at decode, naming the field', () => {
  const policy = { logStd: policyLogStdRange(config().model) }; // log(0.01): logp <= 3.69, >= about -39
  assert.equal(decodeRolloutResult(result([-1, 3.5]), G, H, false, policy).logps[1], 3.5);
  assert.throws(() => decodeRolloutResult(result([1e300, -1]), G, H, false, policy), /rollout_result\.items\[0\]\.logp is 1e\+300, not a finite float32/);
  assert.throws(() => decodeRolloutResult(result([-1, 1e30]), G, H, false, policy), /rollout_result\.items\[1\]\.logp is 1e\+30, outside \[-39\.\d+, 3\.68\d+\]: no log-density of a Gaussian with log-std -4\.60\d+ \(model\.logStd\)/);
  assert.throws(() => decodeRolloutResult(result([-1, -60]), G, H, false, policy), /items\[1\]\.logp is -60, outside/);
  assert.throws(() => decodeRolloutResult(result([-1, NaN]), G, H, false, policy), /items\[1\]\.logp is NaN/);
  // dense: the per-element map too
  const map = new Float32Array(3 * H * H).fill(-1);
  const bad = map.slice();
  bad[7] = 1e30;
  assert.throws(() => decodeRolloutResult(result([-1, -1], [map, bad]), G, H, true, policy), /rollout_result\.items\[1\]\.logp_map\[flat 7\] is 1\.00\d*e\+30, outside/);
  // a learned log-std: only what a finite-density sigma allows (logp <= ln(FLT_MAX)/2 - log(2 pi)/2)
  const learned = { logStd: policyLogStdRange(config({ learnLogStd: true }).model) };
  assert.equal(decodeRolloutResult(result([-1, 40]), G, H, false, learned).logps[1], 40);
  assert.throws(() => decodeRolloutResult(result([-1, 50]), G, H, false, learned), /items\[1\]\.logp is 50, outside .*a learned log-std \(model\.learnLogStd\)/);
});

test('honest logps and logp maps of the real policy graph are accepted, whatever its sigma', async () => {
  for (const logStd of [Math.log(0.01), -1, 0.5, -12]) {
    const cfg = config({ logStd });
    const { roll } = await tinyRollout(parseConfig({ ...cfg, data: { ...cfg.data, size: TINY_H } }));
    const policy = { logStd: policyLogStdRange(cfg.model) };
    for (let i = 0; i + 1 < TINY_N; i += 2) {
      const r: RolloutResult__Output = {
        task_id: 't', attempt: 1, policy_version: 0, compute_ms: 0,
        items: [i, i + 1].map((k, g) => ({
          sample_id: 's', group_index: g, mean: null, flow_steps: [], logp: roll.logp[k]!,
          action: encodeTensor({ dtype: 'float32', shape: [3, H, H], data: roll.action.slice(k * TINY_PIX, (k + 1) * TINY_PIX) }) as never,
          logp_map: encodeTensor({ dtype: 'float32', shape: [3, H, H], data: roll.logpMap.slice(k * TINY_PIX, (k + 1) * TINY_PIX) }) as never,
        })),
      };
      assert.doesNotThrow(() => decodeRolloutResult(r, G, H, true, policy), `logStd ${logStd}`);
    }
  }
});

test('a group whose batch cannot be encoded is split off, the encoder naming train_batch.logp_old', () => {
  const cfg = config();
  const group = (id: string, logps: number[]) => ({
    sampleId: id, image: new Float32Array(3 * H * H), actions: [new Float32Array(3 * H * H), new Float32Array(3 * H * H)],
    logps, versions: [0, 0], rewards: [0, 1], components: [{ ssim: 0, clip_cos: 0 }, { ssim: 1, clip_cos: 1 }], advantages: Float32Array.of(-1, 1),
  });
  const good = group('good', [-1, -2]);
  const bad = group('bad', [1e300, -1]);
  const { encodable, unencodable } = splitEncodable(cfg, 1, false, [good, bad]);
  assert.deepEqual(encodable, [good]);
  assert.equal(unencodable.length, 1);
  assert.equal(unencodable[0]!.group, bad);
  assert.match(unencodable[0]!.error, /train_batch\.logp_old/);
});

test('a worker sending logp 1e300 gets its result refused and the task retried; the run goes on', async () => {
  const cfg = config();
  const { c, events, log } = await testCoordinator(cfg, 'logp');
  const evil = fakeSession('ROLLOUT', 'evil-rollout');
  const scorer = fakeSession('REWARD', 'scorer');
  const learner = fakeSession('LEARNER', 'l');
  c.attach(evil);
  c.attach(scorer);
  c.attach(learner);
  c.start();
  let failed: Error | undefined;
  c.done.catch((e: Error) => { failed = e; });
  await until(() => evil.sent.some((m) => m.rollout_task), 'a rollout task');
  const task = evil.sent.find((m) => m.rollout_task)!.rollout_task!;
  const items = (logp0: number) => Array.from({ length: G }, (_, g) => ({ sample_id: 's', group_index: g, action: img(0.5), logp: g === 0 ? logp0 : -1 }));
  c.handle(evil, { rollout_result: { task_id: task.task_id, attempt: task.attempt, policy_version: 0, compute_ms: 1, items: items(1e300) } } as never);
  assert.ok(log.some((l) => /items\[0\]\.logp is 1e\+300/.test(l)), log.join('\n'));
  // the task is dispatched again (here to the same session, the only one), answered honestly, scored, and trained
  await until(() => evil.sent.filter((m) => m.rollout_task).length >= 2, 'the rollout task dispatched again');
  const again = evil.sent.filter((m) => m.rollout_task).at(-1)!.rollout_task!;
  c.handle(evil, { rollout_result: { task_id: again.task_id, attempt: again.attempt, policy_version: 0, compute_ms: 1, items: items(-1.5) } } as never);
  await until(() => scorer.sent.some((m) => m.score_task), 'a score task');
  const st = scorer.sent.find((m) => m.score_task)!.score_task!;
  c.handle(scorer, { score_result: { task_id: st.task_id, attempt: st.attempt, components: [{ ssim: 0.9, clip_cos: 0.9 }, { ssim: 0.1, clip_cos: 0.1 }] } } as WorkerMessage__Output);
  await until(() => learner.sent.some((m) => m.train_batch), 'the batch sent to the learner');
  const tb = learner.sent.find((m) => m.train_batch)!.train_batch!;
  assert.deepEqual(tb.sample_ids!.length, G);
  assert.equal(failed, undefined);
  assert.equal(events.filter((e) => e.type === 'dropped').length, 0);
  c.close();
});
