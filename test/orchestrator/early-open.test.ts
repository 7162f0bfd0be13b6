// At maxStaleness 0 the coordinator opens GRPO batch seq once batch seq - 1 is at the learner, its rollout tasks
// asking for the version seq - 1 will produce (coordinator.ts `openEarly`): the rollout worker starts as soon as
// that version is announced. The batch stands when the acknowledgement names that version; otherwise (a skipped
// batch) its tasks are cancelled at their holder and it opens again with the version the acknowledgement brought.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../lib/config/index.ts';
import { encodeTensor, type WorkerMessage__Output } from '../../lib/transport/index.ts';
import { earlyLimitMs } from '../../orchestrator/coordinator.ts';
import { fakeSession, until } from '../helpers/fake-session.ts';
import { testCoordinator } from '../helpers/coordinator.ts';

const G = 2;
const H = 16;

async function setup(maxStaleness: number) {
  const config = parseConfig({
    run: { id: 'early', seed: 1 },
    data: { size: H, source: { kind: 'procedural', count: 16 } },
    model: { width: 4, depth: 1 },
    sft: { steps: 0 },
    grpo: { steps: 3, groupSize: G, samplesPerBatch: 1, maxStaleness, advantageMode: 'scalar' },
  });
  const { c, log, metrics } = await testCoordinator(config, 'early');
  const roll = fakeSession('ROLLOUT', 'r');
  const reward = fakeSession('REWARD', 's');
  const learner = fakeSession('LEARNER', 'l');
  c.attach(roll);
  c.attach(reward);
  c.attach(learner);
  c.start();
  const rollouts = () => roll.sent.filter((m) => m.rollout_task).map((m) => m.rollout_task!);
  const cancels = () => roll.sent.filter((m) => m.cancel_task).map((m) => m.cancel_task!.task_id);
  const batches = () => learner.sent.filter((m) => m.train_batch).map((m) => m.train_batch!);
  /** Answers rollout task `i` (its version: `version`) and then its score task: the batch goes to the learner. */
  const complete = async (i: number, version: number) => {
    const t = rollouts()[i]!;
    const scored = reward.sent.filter((m) => m.score_task).length;
    const action = () => encodeTensor({ dtype: 'float32', shape: [3, H, H], data: new Float32Array(3 * H * H).fill(0.5) });
    c.handle(roll, { rollout_result: { task_id: t.task_id, attempt: t.attempt, policy_version: version, items: Array.from({ length: G }, (_, g) => ({ sample_id: t.items![0]!.sample_id, group_index: g, action: action(), logp: -1 })), compute_ms: 1 } } as unknown as WorkerMessage__Output);
    await until(() => reward.sent.filter((m) => m.score_task).length > scored, `the score task of rollout task ${i} dispatched`);
    const s = reward.sent.filter((m) => m.score_task)[scored]!.score_task!;
    c.handle(reward, { score_result: { task_id: s.task_id, attempt: s.attempt, components: Array.from({ length: G }, (_, g) => ({ ssim: 0.5 + 0.1 * g, clip_cos: 0.5 })), compute_ms: 1, clip_encoder: 'toy' } } as unknown as WorkerMessage__Output);
  };
  const ack = (seq: number, version: number, applied: boolean, reason = '') =>
    c.handle(learner, { train_result: { batch_id: `early-b${seq}`, batch_seq: seq, applied, skipped_reason: reason, version, loss: 0, compute_ms: 1 } } as WorkerMessage__Output);
  return { c, log, learner, rollouts, cancels, batches, complete, ack, metrics };
}

test('maxStaleness 0: the next batch opens once the previous one is at the learner, asking for the version it will produce; it stands when the acknowledgement names it', async () => {
  const { c, log, rollouts, cancels, batches, complete, ack } = await setup(0);
  await until(() => rollouts().length === 1, 'batch 1 dispatched');
  assert.equal(rollouts()[0]!.policy_version_min, 0);
  await complete(0, 0);
  await until(() => batches().length === 1, 'batch 1 at the learner');
  // batch 2 is out before batch 1 is acknowledged, for version 1
  await until(() => rollouts().length === 2, `batch 2 opened before batch 1's acknowledgement\n${log.join('\n')}`);
  assert.equal(rollouts()[1]!.policy_version_min, 1);
  assert.equal(c.state.ackedSeq, 0);
  ack(1, 1, true);
  await until(() => c.state.ackedSeq === 1, 'batch 1 acknowledged');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(rollouts().length, 2, 'batch 2 was not dispatched again');
  assert.deepEqual(cancels(), []);
  await complete(1, 1);
  await until(() => batches().length === 2, 'batch 2 at the learner');
  assert.equal(batches()[1]!.batch_seq, 2);
  assert.deepEqual(batches()[1]!.behaviour_versions, [1, 1]);
  c.close();
});

test('maxStaleness 0: a batch opened early is withdrawn when the acknowledgement brings another version, and opens again with it', async () => {
  const { c, log, rollouts, cancels, batches, complete, ack } = await setup(0);
  await until(() => rollouts().length === 1, 'batch 1 dispatched');
  await complete(0, 0);
  await until(() => rollouts().length === 2, 'batch 2 opened early');
  const early = rollouts()[1]!;
  assert.equal(early.policy_version_min, 1);
  // the learner skipped batch 1 (non-finite): still at version 0
  ack(1, 0, false, 'non_finite');
  await until(() => rollouts().length === 3, `batch 2 opened again\n${log.join('\n')}`);
  assert.deepEqual(cancels(), [early.task_id], 'the early task was cancelled at its holder');
  const again = rollouts()[2]!;
  assert.equal(again.policy_version_min, 0);
  assert.equal(again.items![0]!.sample_id, early.items![0]!.sample_id, 'the same sample');
  assert.notEqual(again.task_id, early.task_id);
  assert.ok(log.some((l) => /withdrawn/.test(l)), log.join('\n'));
  // a late result for the withdrawn task is ignored; the new one completes the batch
  await complete(2, 0);
  await until(() => batches().length === 2, 'batch 2 at the learner');
  assert.deepEqual(batches()[1]!.behaviour_versions, [0, 0]);
  c.close();
});

test('maxStaleness 0: a task error naming the early batch\'s rollout task withdraws it only from the task\'s holder', async () => {
  const { c, log, rollouts, cancels, complete } = await setup(0);
  await until(() => rollouts().length === 1, 'batch 1 dispatched');
  await complete(0, 0);
  await until(() => rollouts().length === 2, 'batch 2 opened early');
  const early = rollouts()[1]!;
  // another rollout worker names the early task, which it does not hold: refused, the batch stands
  const other = fakeSession('ROLLOUT', 'r2');
  c.attach(other);
  c.handle(other, { task_error: { task_id: early.task_id, attempt: early.attempt, code: 'policy_unavailable', message: 'x', retryable: true } } as WorkerMessage__Output);
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(cancels(), [], `not withdrawn\n${log.join('\n')}`);
  assert.ok(!log.some((l) => /withdrawn/.test(l)), log.join('\n'));
  c.close();
});

test('a learner\'s skipped_reason reaches the log quoted and the metric as a known outcome only', async () => {
  const { c, log, rollouts, batches, complete, ack, metrics } = await setup(0);
  await until(() => rollouts().length === 1, 'batch 1 dispatched');
  await complete(0, 0);
  await until(() => batches().length === 1, 'batch 1 at the learner');
  ack(1, 0, false, 'made up\n[orchestrator] forged line');
  await until(() => c.state.ackedSeq === 1, 'batch 1 acknowledged');
  assert.ok(log.every((l) => !l.includes('\n')), `one line each\n${log.join('\n')}`);
  assert.ok(log.some((l) => l.includes('batch 1 not applied: "made up\\n[orchestrator] forged line"')), log.join('\n'));
  const text = await metrics.registry.metrics();
  assert.match(text, /train_batches_total\{[^}]*outcome="skipped"[^}]*\} 1/);
  assert.doesNotMatch(text, /forged/);
  c.close();
});

test('maxStaleness 0: a batch opened early is withdrawn when the learner disconnects, and opens again after the acknowledgement', async () => {
  const { c, log, learner, rollouts, cancels, complete } = await setup(0);
  await until(() => rollouts().length === 1, 'batch 1 dispatched');
  await complete(0, 0);
  await until(() => rollouts().length === 2, 'batch 2 opened early');
  const early = rollouts()[1]!;
  c.detach(learner);
  await until(() => cancels().length === 1, `the early task cancelled\n${log.join('\n')}`);
  assert.deepEqual(cancels(), [early.task_id]);
  const again = fakeSession('LEARNER', 'l2');
  c.attach(again);
  await until(() => again.sent.some((m) => m.train_batch?.batch_seq === 1), 'batch 1 sent again to the new learner');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(rollouts().length, 2, 'not opened early a second time');
  c.handle(again, { train_result: { batch_id: 'early-b1', batch_seq: 1, applied: true, skipped_reason: '', version: 1, loss: 0, compute_ms: 1 } } as WorkerMessage__Output);
  await until(() => rollouts().length === 3, 'batch 2 opened after the acknowledgement');
  assert.equal(rollouts()[2]!.policy_version_min, 1);
  c.close();
});

test('maxStaleness 1: nothing opens before the rule allows (the early opening is for maxStaleness 0 only)', async () => {
  const { c, rollouts, batches, complete } = await setup(1);
  await until(() => rollouts().length === 2, 'batches 1 and 2 dispatched (staleness 1)');
  await complete(0, 0);
  await until(() => batches().length === 1, 'batch 1 at the learner');
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(rollouts().length, 2, 'batch 3 waits for batch 1 to be acknowledged');
  c.close();
});

for (const [what, computeMs] of [['without compute_ms', undefined], ['with a NaN compute_ms', NaN]] as const) {
  test(`maxStaleness 0: a TrainResult ${what} keeps the early batch's time limit (a NaN limit withdrew it at once)`, async () => {
    const { c, log, learner, rollouts, batches, complete } = await setup(0);
    await until(() => rollouts().length === 1, 'batch 1 dispatched');
    await complete(0, 0);
    await until(() => rollouts().length === 2, 'batch 2 opened early');
    c.handle(learner, { train_result: { batch_id: 'early-b1', batch_seq: 1, applied: true, skipped_reason: '', version: 1, loss: 0, ...(computeMs === undefined ? {} : { compute_ms: computeMs }) } } as WorkerMessage__Output);
    await until(() => c.state.ackedSeq === 1, 'batch 1 acknowledged');
    await complete(1, 1);
    await until(() => batches().length === 2, 'batch 2 at the learner');
    await until(() => rollouts().length === 3, `batch 3 opened early\n${log.join('\n')}`);
    // a check that nothing happens: the limit is 5 s at least (a NaN one fired after 1 ms)
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(!log.some((l) => /withdrawn/.test(l)), log.join('\n'));
    assert.equal(rollouts().length, 3, 'batch 3 not opened again');
    c.close();
  });
}

// Round 35 (found by running both cases of test/orchestrator/state-lost-chain.test.ts): a restarted orchestrator sends
// its batch 1 to a learner whose Hello says it holds batch 4, and opens batch 2 early (the acknowledged seq is still 0)
// while the Hello's catch-up to batch 4 is being stored. The catch-up forgets batch 2's groups; a later withdrawal of
// that early batch (the next acknowledgement, or its time limit) moved the next batch to open back to batch 2, below
// the acknowledged 5, and it threw ("staleness: batch seq 2 must be an integer after the acknowledged 5").
test('maxStaleness 0: a batch opened early while a Hello\'s catch-up past it is being stored ends with that catch-up; the run goes on', async () => {
  const config = parseConfig({
    run: { id: 'early-catchup', seed: 1 },
    data: { size: H, source: { kind: 'procedural', count: 16 } },
    model: { width: 4, depth: 1 },
    sft: { steps: 0 },
    grpo: { steps: 6, groupSize: G, samplesPerBatch: 1, maxStaleness: 0, advantageMode: 'scalar' },
  });
  // the catch-up's write waits until the test lets it go
  let release: (() => void) | undefined;
  const { c, log } = await testCoordinator(config, 'early-catchup', {
    publishedProgress: async () => ({ version: 4, lastBatchSeq: 4 }),
    persist: (next) => (next.ackedSeq === 4 ? new Promise<void>((r) => (release = r)) : Promise.resolve()),
  });
  const roll = fakeSession('ROLLOUT', 'r');
  const reward = fakeSession('REWARD', 's');
  c.attach(roll);
  c.attach(reward);
  c.start();
  const rollouts = () => roll.sent.filter((m) => m.rollout_task).map((m) => m.rollout_task!);
  const cancels = () => roll.sent.filter((m) => m.cancel_task).map((m) => m.cancel_task!.task_id);
  const action = () => encodeTensor({ dtype: 'float32', shape: [3, H, H], data: new Float32Array(3 * H * H).fill(0.5) });
  const complete = async (t: ReturnType<typeof rollouts>[number], version: number) => {
    const scored = reward.sent.filter((m) => m.score_task).length;
    c.handle(roll, { rollout_result: { task_id: t.task_id, attempt: t.attempt, policy_version: version, items: Array.from({ length: G }, (_, g) => ({ sample_id: t.items![0]!.sample_id, group_index: g, action: action(), logp: -1 })), compute_ms: 1 } } as unknown as WorkerMessage__Output);
    await until(() => reward.sent.filter((m) => m.score_task).length > scored, `the score task of ${t.task_id} dispatched`);
    const st = reward.sent.filter((m) => m.score_task)[scored]!.score_task!;
    c.handle(reward, { score_result: { task_id: st.task_id, attempt: st.attempt, components: Array.from({ length: G }, (_, g) => ({ ssim: 0.5 + 0.1 * g, clip_cos: 0.5 })), compute_ms: 1, clip_encoder: 'toy' } } as unknown as WorkerMessage__Output);
  };
  await until(() => rollouts().length === 1, 'batch 1 dispatched');
  await complete(rollouts()[0]!, 0);
  // the learner connects holding batch 4: batch 1 goes to it (nothing is acknowledged yet) and batch 2 opens early
  const learner = fakeSession('LEARNER', 'l');
  (learner.hello as { last_batch_seq?: number }).last_batch_seq = 4;
  c.attach(learner);
  await until(() => release !== undefined, `the catch-up to batch 4 being stored\n${log.join('\n')}`);
  await until(() => learner.sent.some((m) => m.train_batch?.batch_seq === 1), 'batch 1 sent to the learner');
  await until(() => rollouts().length === 2, `batch 2 opened early\n${log.join('\n')}`);
  const early = rollouts()[1]!;
  assert.equal(early.policy_version_min, 1);
  release!();
  await until(() => c.state.ackedSeq === 4, 'batch 4 caught up');
  // batch 5 opens; batch 2's task was cancelled with the batches the learner holds
  await until(() => rollouts().length === 3, `batch 5 opened\n${log.join('\n')}`);
  assert.ok(cancels().includes(early.task_id), `batch 2's early task cancelled\n${log.join('\n')}`);
  const fifth = rollouts()[2]!;
  assert.equal(fifth.policy_version_min, 4);
  await complete(fifth, 4);
  await until(() => learner.sent.some((m) => m.train_batch?.batch_seq === 5), 'batch 5 at the learner');
  c.handle(learner, { train_result: { batch_id: 'early-catchup-b5', batch_seq: 5, applied: true, skipped_reason: '', version: 5, loss: 0, compute_ms: 1 } } as WorkerMessage__Output);
  await until(() => c.state.ackedSeq === 5, `batch 5 acknowledged\n${log.join('\n')}`);
  // the next batch is 6, opened for version 5; no batch at or below the acknowledged one opens again
  await until(() => rollouts().length === 4, `batch 6 opened\n${log.join('\n')}`);
  assert.equal(rollouts()[3]!.policy_version_min, 5);
  assert.ok(!log.some((l) => /run failed/.test(l)), log.join('\n'));
  c.close();
});

test('an early batch waits at least 5 s, and at least 3 of the learner\'s last GRPO steps (a slow step does not withdraw every early batch)', () => {
  assert.equal(earlyLimitMs(0), 5000);
  assert.equal(earlyLimitMs(1000), 5000);
  assert.equal(earlyLimitMs(4000), 12000);
});
