// A task_error { retryable: false } is one worker's word: review25c's rollout worker answered every task so, each task
// was given up at its first attempt, and every GRPO batch went to the learner empty. Now a task is given up only once
// two distinct workers call it non-retryable (or after maxAttempts); until then it is retried, and a batch that loses
// more than half its groups to failures sets failed_group_fraction and logs a warning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../lib/config/index.ts';
import type { RolloutTask__Output, WorkerMessage__Output } from '../../lib/transport/index.ts';
import { fakeSession, until, type FakeSession } from '../helpers/fake-session.ts';
import { testCoordinator } from '../helpers/coordinator.ts';

async function setup(runId: string, samplesPerBatch = 1) {
  const config = parseConfig({
    run: { id: runId, seed: 1 }, data: { size: 16, source: { kind: 'procedural', count: 16 } }, model: { width: 4, depth: 1 },
    sft: { steps: 0 }, grpo: { steps: 1, groupSize: 2, samplesPerBatch, maxStaleness: 0, advantageMode: 'scalar' },
  });
  const { c, events, log, metrics } = await testCoordinator(config, runId);
  const learner = fakeSession('LEARNER', 'l');
  c.attach(learner);
  c.start();
  const tasks = (s: FakeSession) => s.sent.flatMap((m) => (m.rollout_task ? [m.rollout_task as RolloutTask__Output] : []));
  const refuse = (s: FakeSession, t: RolloutTask__Output) =>
    c.handle(s, { task_error: { task_id: t.task_id, attempt: t.attempt, code: 'bad_input', message: 'no', retryable: false } } as WorkerMessage__Output);
  const dropped = () => events.filter((e) => e.type === 'dropped');
  return { c, events, log, metrics, learner, tasks, refuse, dropped };
}

test("one worker's non-retryable errors do not drop the sample before maxAttempts; two workers' do", async () => {
  const { c, log, metrics, learner, tasks, refuse, dropped } = await setup('nonretry');
  const a = fakeSession('ROLLOUT', 'dropper');
  c.attach(a);
  await until(() => tasks(a).length === 1, 'the rollout task sent to the dropper');
  refuse(a, tasks(a)[0]!);
  // retried (here to the same worker, the only one), not given up
  await until(() => tasks(a).length === 2, 'the task dispatched again');
  assert.equal(dropped().length, 0);
  assert.ok(log.some((l) => /reports a non-retryable error \(bad_input: "no"\) at attempt 1; retried/.test(l)), log.join('\n'));
  // the same worker again: still one worker's word
  refuse(a, tasks(a)[1]!);
  await until(() => tasks(a).length === 3, 'dispatched a third time');
  assert.equal(dropped().length, 0);
  // a second worker says the same: given up, the sample dropped
  c.detach(a);
  const b = fakeSession('ROLLOUT', 'other');
  c.attach(b);
  await until(() => tasks(b).length === 1, 'the task sent to the second worker');
  refuse(b, tasks(b)[0]!);
  await until(() => dropped().length === 1, 'the sample dropped');
  assert.ok(log.some((l) => /giving up task .* after 4 attempts: bad_input: "no" \(non-retryable for 2 workers\)/.test(l)), log.join('\n'));
  // the batch lost all its groups to failures: the gauge says so, and the log warns
  await until(() => learner.sent.some((m) => m.train_batch), 'the (empty) batch sent');
  assert.ok(log.some((l) => /warning: GRPO batch 1: 1 of 1 groups dropped for failures \(task_failed\), over 0\.5/.test(l)), log.join('\n'));
  assert.match(await metrics.registry.metrics(), /recovery_grpo_failed_group_fraction\{[^}]*\} 1\n/);
  c.close();
});

test('a worker that answers every attempt non-retryable gets its task given up after maxAttempts (5)', async () => {
  const { c, log, tasks, refuse, dropped } = await setup('nonretry-max');
  const a = fakeSession('ROLLOUT', 'dropper');
  c.attach(a);
  for (let k = 1; k <= 5; k++) {
    await until(() => tasks(a).length === k, `attempt ${k} sent`);
    assert.equal(dropped().length, 0, `not dropped before attempt ${k}`);
    refuse(a, tasks(a)[k - 1]!);
  }
  await until(() => dropped().length === 1, 'dropped after 5 attempts');
  assert.ok(log.some((l) => /giving up task .* after 5 attempts/.test(l)), log.join('\n'));
  c.close();
});

test('the retry of a non-retryable error goes to another worker of the role when there is one', async () => {
  const { c, tasks, refuse, dropped } = await setup('nonretry-steer', 2);
  const a = fakeSession('ROLLOUT', 'first');
  const b = fakeSession('ROLLOUT', 'second');
  c.attach(a);
  c.attach(b);
  // two rollout tasks, one each (spread)
  await until(() => tasks(a).length === 1 && tasks(b).length === 1, 'one rollout task to each');
  refuse(a, tasks(a)[0]!);
  // a now holds none and b one: the least-loaded worker is a, which had it back before; now b gets it
  await until(() => tasks(b).length === 2, 'the retry sent to the other worker');
  assert.equal(tasks(b)[1]!.task_id, tasks(a)[0]!.task_id);
  assert.equal(tasks(a).length, 1, 'not back to the worker that refused it');
  assert.equal(dropped().length, 0);
  // with the other worker gone, the refuser gets it again (retried until maxAttempts, not held for ever)
  c.detach(b);
  await until(() => tasks(a).some((t, i) => i > 0 && t.task_id === tasks(a)[0]!.task_id), 'the retry sent back once no other worker is attached');
  c.close();
});
