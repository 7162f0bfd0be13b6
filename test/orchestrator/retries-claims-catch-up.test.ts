// Where a failed task goes next, what a TrainResult's version may claim, and a catch-up that must not stall or
// mislabel: the coordinator alone with fake sessions.
// review26a: findings of round 26's review of the orchestrator's core, each as a test that fails on the code reviewed
// (main at 49a92db). The coordinator alone with fake sessions (as test/orchestrator/early-open.test.ts and
// quarantine.test.ts drive it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../lib/config/index.ts';
import { encodeTensor, type WorkerMessage__Output } from '../../lib/transport/index.ts';
import { fakeSession, until } from '../helpers/fake-session.ts';
import { testCoordinator } from '../helpers/coordinator.ts';

const G = 2;
const H = 16;

// F1. A Hello's catch-up (or a restarted learner's `duplicate`) acknowledges an open batch that was never sent: the
// GroupPipeline forgets it and moves nextSendK past it (grpo-groups.ts `acknowledged`), but never calls trySend(). A
// later batch that was already complete, waiting behind the forgotten one, is then sent only when some other group
// completes. At the end of the run (or when every open batch is complete) nothing ever does: the run stalls for good.
// Scenario: maxStaleness 1, the orchestrator restarted after batch 0 (seq 1) was applied by the learner but before its
// acknowledgement was stored; it re-opens seq 1 and seq 2; seq 2's group is rolled out and scored before the learner
// reconnects; the learner's Hello says it holds seq 1 (its published checkpoint confirms it).
test('review26a F1: a batch complete behind one that a catch-up acknowledged is sent to the learner (no stall)', async () => {
  const config = parseConfig({
    run: { id: 'r26a-stall', seed: 1 },
    data: { size: H, source: { kind: 'procedural', count: 16 } },
    model: { width: 4, depth: 1 },
    sft: { steps: 0 },
    grpo: { steps: 2, groupSize: G, samplesPerBatch: 1, maxStaleness: 1, advantageMode: 'scalar' },
  });
  const { c, log } = await testCoordinator(config, 'r26a-stall', {
    // the learner's newest announced checkpoint: v1, after batch 1
    publishedProgress: async () => ({ version: 1, lastBatchSeq: 1 }),
  });
  const roll = fakeSession('ROLLOUT', 'r');
  const reward = fakeSession('REWARD', 's');
  c.attach(roll);
  c.attach(reward);
  c.start();
  const rollouts = () => roll.sent.flatMap((m) => (m.rollout_task ? [m.rollout_task] : m.task_bundle?.rollout_tasks ?? []));
  await until(() => rollouts().length === 2, 'both open batches (seq 1 and 2) dispatched at maxStaleness 1');
  // seq 2 = GRPO batch k=1, cursor 1: its rollout and score come back; seq 1's rollout (cursor 0) is still out
  const t = rollouts().find((x) => x.task_id!.startsWith('r26a-stall-r1-'))!;
  assert.ok(t, 'the rollout task of batch 2');
  const action = () => encodeTensor({ dtype: 'float32', shape: [3, H, H], data: new Float32Array(3 * H * H).fill(0.5) });
  c.handle(roll, { rollout_result: { task_id: t.task_id, attempt: t.attempt, policy_version: 0, items: Array.from({ length: G }, (_, g) => ({ sample_id: t.items![0]!.sample_id, group_index: g, action: action(), logp: -1 })), compute_ms: 1 } } as unknown as WorkerMessage__Output);
  await until(() => reward.sent.some((m) => m.score_task), 'the score task of batch 2');
  const s = reward.sent.find((m) => m.score_task)!.score_task!;
  c.handle(reward, { score_result: { task_id: s.task_id, attempt: s.attempt, components: Array.from({ length: G }, (_, g) => ({ ssim: 0.5 + 0.1 * g, clip_cos: 0.5 })), compute_ms: 1, clip_encoder: 'toy' } } as unknown as WorkerMessage__Output);
  await new Promise((r) => setTimeout(r, 20));
  // the learner reconnects: its Hello says it holds batch 1 (applied while this orchestrator was down)
  const learner = fakeSession('LEARNER', 'l');
  (learner.hello as { last_batch_seq?: number }).last_batch_seq = 1;
  c.attach(learner);
  await until(() => c.state.ackedSeq === 1, `batch 1 caught up\n${log.join('\n')}`);
  // batch 2 is complete: it must reach the learner now (the run's last batch: nothing else will ever send it)
  await until(() => learner.sent.some((m) => m.train_batch?.batch_seq === 2), `batch 2 (complete, behind the caught-up batch 1) sent to the learner\n${log.join('\n')}`);
  // exactly once: a later group's completion (none here) or acknowledgement must not hand it out again
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(learner.sent.filter((m) => m.train_batch?.batch_seq === 2).length, 1, 'batch 2 sent once');
  assert.ok(!learner.sent.some((m) => m.train_batch?.batch_seq === 1), 'batch 1 (acknowledged by the catch-up) is not sent');
  c.close();
});

// F3, the live path: a Hello's catch-up acknowledges a batch one of whose groups this process logged dropped; the
// inferred 'trained' event of that batch does not list it (the audit trail never says dropped and trained).
test('review26a F3: a batch caught up from a Hello does not list as trained a group this process logged dropped', async () => {
  const config = parseConfig({
    run: { id: 'r26a-catchdrop', seed: 1 },
    data: { size: H, source: { kind: 'procedural', count: 16 } },
    model: { width: 4, depth: 1 },
    sft: { steps: 0 },
    grpo: { steps: 3, groupSize: G, samplesPerBatch: 1, maxStaleness: 1, advantageMode: 'scalar', dropZeroVarianceGroups: true },
  });
  const { c, events, log } = await testCoordinator(config, 'r26a-catchdrop', { publishedProgress: async () => ({ version: 2, lastBatchSeq: 2 }) });
  const roll = fakeSession('ROLLOUT', 'r');
  const reward = fakeSession('REWARD', 's');
  c.attach(roll);
  c.attach(reward);
  c.start();
  const rollouts = () => roll.sent.flatMap((m) => (m.rollout_task ? [m.rollout_task] : m.task_bundle?.rollout_tasks ?? []));
  await until(() => rollouts().length === 2, 'batches 1 and 2 dispatched');
  // batch 2's only group: rolled out, then scored with equal rewards: dropped (zero variance)
  const t = rollouts().find((x) => x.task_id!.startsWith('r26a-catchdrop-r1-'))!;
  const action = () => encodeTensor({ dtype: 'float32', shape: [3, H, H], data: new Float32Array(3 * H * H).fill(0.5) });
  c.handle(roll, { rollout_result: { task_id: t.task_id, attempt: t.attempt, policy_version: 0, items: Array.from({ length: G }, (_, g) => ({ sample_id: t.items![0]!.sample_id, group_index: g, action: action(), logp: -1 })), compute_ms: 1 } } as unknown as WorkerMessage__Output);
  await until(() => reward.sent.some((m) => m.score_task), 'the score task of batch 2');
  const st = reward.sent.find((m) => m.score_task)!.score_task!;
  c.handle(reward, { score_result: { task_id: st.task_id, attempt: st.attempt, components: Array.from({ length: G }, () => ({ ssim: 0.5, clip_cos: 0.5 })), compute_ms: 1, clip_encoder: 'toy' } } as unknown as WorkerMessage__Output);
  await until(() => events.some((e) => e.type === 'dropped'), `batch 2's group dropped\n${log.join('\n')}\n${JSON.stringify(events)}`);
  const droppedSample = events.find((e) => e.type === 'dropped')!;
  // the learner comes back holding batch 2 (applied while this orchestrator was down)
  const learner = fakeSession('LEARNER', 'l');
  (learner.hello as { last_batch_seq?: number }).last_batch_seq = 2;
  c.attach(learner);
  await until(() => c.state.ackedSeq === 2, `caught up to batch 2\n${log.join('\n')}`);
  const t2 = events.find((e) => e.type === 'trained' && e.seq === 2);
  assert.ok(t2 && t2.type === 'trained');
  assert.ok(droppedSample.type === 'dropped');
  assert.deepEqual(t2.samples, [], `batch 2's trained event lists ${JSON.stringify(t2.samples)}; ${droppedSample.sample} was logged dropped`);
  const t1 = events.find((e) => e.type === 'trained' && e.seq === 1);
  assert.ok(t1 && t1.type === 'trained' && t1.samples.length === 1, 'batch 1 (no drop) lists its sample');
  c.close();
});

// F4. Round 25 made one worker's `retryable: false` insufficient to give a task up (NON_RETRYABLE_QUORUM, and the retry
// steered to another worker: task-board.ts handAside). The same worker answering `retryable: true` (or a malformed
// result, which the coordinator refuses as a retryable `bad_result`) is not steered: the retried task goes back to the
// least-loaded worker, which is the one that just failed it at once, so one rollout credential takes all maxAttempts (5)
// attempts and the group is dropped while an honest worker with room sits beside it. Answering every task so empties
// every GRPO batch (review25c's attack, with one flag flipped). Expected: a task one worker failed is retried on another
// worker of the role when one with room is attached (as for non-retryable errors), so it is not given up on one worker's
// failures alone.
test('review26a F4: one worker failing a task with retryable errors does not get every attempt while another worker has room', async () => {
  const config = parseConfig({
    run: { id: 'r26a-retry', seed: 1 }, data: { size: H, source: { kind: 'procedural', count: 16 } }, model: { width: 4, depth: 1 },
    sft: { steps: 0 }, grpo: { steps: 1, groupSize: G, samplesPerBatch: 2, maxStaleness: 0, advantageMode: 'scalar' },
  });
  const { c, events, log } = await testCoordinator(config, 'r26a-retry');
  const evil = fakeSession('ROLLOUT', 'evil');
  const honest = fakeSession('ROLLOUT', 'honest');
  const learner = fakeSession('LEARNER', 'l');
  c.attach(evil); // attached first: the first dispatch (a tie at load 0) goes to it
  c.attach(honest);
  c.attach(learner);
  c.start();
  const tasks = (s: typeof evil) => s.sent.flatMap((m) => (m.rollout_task ? [m.rollout_task] : m.task_bundle?.rollout_tasks ?? []));
  const dropped = () => events.filter((e) => e.type === 'dropped');
  // one task each (spread); the honest worker works on its own (it holds it: load 1, room for 3 more)
  await until(() => tasks(evil).length === 1 && tasks(honest).length === 1, 'one rollout task to each worker');
  const failed = tasks(evil)[0]!.task_id;
  // the evil worker answers each attempt of its task with a retryable error, at once
  for (let k = 1; k <= 5; k++) {
    await until(() => tasks(evil).length >= k || tasks(honest).length > 1 || dropped().length > 0, `attempt ${k} dispatched`);
    if (tasks(honest).length > 1 || dropped().length > 0) break;
    const t = tasks(evil)[k - 1]!;
    c.handle(evil, { task_error: { task_id: t.task_id, attempt: t.attempt, code: 'internal', message: 'try again', retryable: true } } as unknown as WorkerMessage__Output);
  }
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(dropped(), [], `the group was given up after ${tasks(evil).length} attempts, all on the failing worker; the honest one (room for 3 more) never got it\n${log.join('\n')}`);
  assert.ok(tasks(honest).some((t) => t.task_id === failed), 'the retry went to the other worker');
  c.close();
});

// F4, the other half: a malformed result is refused as a retryable bad_result; its retry too goes to the other worker.
test('review26a F4: one worker answering a task with malformed results does not get every attempt while another worker has room', async () => {
  const config = parseConfig({
    run: { id: 'r26a-badres', seed: 1 }, data: { size: H, source: { kind: 'procedural', count: 16 } }, model: { width: 4, depth: 1 },
    sft: { steps: 0 }, grpo: { steps: 1, groupSize: G, samplesPerBatch: 2, maxStaleness: 0, advantageMode: 'scalar' },
  });
  const { c, events, log } = await testCoordinator(config, 'r26a-badres');
  const evil = fakeSession('ROLLOUT', 'evil');
  const honest = fakeSession('ROLLOUT', 'honest');
  c.attach(evil);
  c.attach(honest);
  c.attach(fakeSession('LEARNER', 'l'));
  c.start();
  const tasks = (s: typeof evil) => s.sent.flatMap((m) => (m.rollout_task ? [m.rollout_task] : m.task_bundle?.rollout_tasks ?? []));
  await until(() => tasks(evil).length === 1 && tasks(honest).length === 1, 'one rollout task to each worker');
  const t = tasks(evil)[0]!;
  c.handle(evil, { rollout_result: { task_id: t.task_id, attempt: t.attempt, policy_version: 0, items: [], compute_ms: 1 } } as unknown as WorkerMessage__Output);
  await until(() => tasks(honest).some((x) => x.task_id === t.task_id) || tasks(evil).length > 1, 'the retry dispatched');
  assert.ok(log.some((l) => /rejected a message from evil/.test(l)), log.join('\n'));
  assert.deepEqual(tasks(evil).map((x) => x.task_id), [t.task_id], 'not back to the worker whose result was refused');
  assert.equal(tasks(honest).find((x) => x.task_id === t.task_id)?.attempt, 2);
  assert.deepEqual(events.filter((e) => e.type === 'dropped'), []);
  c.close();
});

// F5. The learner's progress is "checked, not believed" in its Hello (coordinator.ts catchUp: only as far as the
// newest published checkpoint), but a TrainResult's version is taken as it comes: applyAck stores
// max(r.version, learnerVersion). One train_result { batch_seq: 1, applied: true, version: 424242 } (a learner
// credential, or a learner bug) is persisted in the run state; from then on every rollout task asks for
// policy_version_min 424242 and every Welcome says policy_version 424242, a version that never comes: rollout workers
// wait for it and fail every task, every group is dropped, a restarted learner refuses to resume below it, and a
// restarted orchestrator reads it back from KV (max() never lets it fall). Each applied batch makes one version, so
// the version after batch seq is at most learnerVersion + (seq - ackedSeq); the version could be checked against
// that bound (or against the published checkpoint, as the Hello's claim is).
test('review26a F5: a TrainResult naming a version no batch could have produced does not become the run\'s version', async () => {
  const config = parseConfig({
    run: { id: 'r26a-version', seed: 1 }, data: { size: H, source: { kind: 'procedural', count: 16 } }, model: { width: 4, depth: 1 },
    sft: { steps: 2, batchSize: 2 }, grpo: { steps: 1, groupSize: G, samplesPerBatch: 1, advantageMode: 'scalar' },
  });
  const stored: Array<{ ackedSeq: number; learnerVersion: number }> = [];
  const { c, log, metrics } = await testCoordinator(config, 'r26a-version', { persist: async (s) => void stored.push({ ...s }) });
  const learner = fakeSession('LEARNER', 'l');
  c.attach(learner);
  c.start();
  await until(() => learner.sent.some((m) => m.train_batch?.batch_seq === 1), 'batch 1 sent');
  const b1 = learner.sent.find((m) => m.train_batch?.batch_seq === 1)!.train_batch!;
  c.handle(learner, { train_result: { batch_id: b1.batch_id, batch_seq: 1, applied: true, skipped_reason: '', version: 424242, loss: 0, compute_ms: 1 } } as unknown as WorkerMessage__Output);
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(c.state.learnerVersion <= 1, `the run's version after batch 1 is ${c.state.learnerVersion} (stored: ${JSON.stringify(stored)})`);
  // refused, logged and counted; nothing stored; the learner's true answer is then taken
  assert.deepEqual(stored, []);
  assert.ok(log.some((l) => /refused the train_result for batch 1: version 424242 is above .* \(at most 1, one per batch\) and above the newest published checkpoint \(none\)/.test(l)), log.join('\n'));
  assert.match(await metrics.registry.metrics(), /task_errors_total\{worker_role="learner",code="unverified_claim"[^}]*\} 1/);
  c.handle(learner, { train_result: { batch_id: b1.batch_id, batch_seq: 1, applied: true, skipped_reason: '', version: 1, loss: 0, compute_ms: 1 } } as unknown as WorkerMessage__Output);
  await until(() => c.state.ackedSeq === 1, 'batch 1 acknowledged at version 1');
  assert.deepEqual(stored, [{ ackedSeq: 1, learnerVersion: 1 }]);
  c.close();
});

test('review26a F5: a TrainResult version above the per-batch bound is taken where the published checkpoint confirms it', async () => {
  const config = parseConfig({
    run: { id: 'r26a-version-pub', seed: 1 }, data: { size: H, source: { kind: 'procedural', count: 16 } }, model: { width: 4, depth: 1 },
    sft: { steps: 2, batchSize: 2 }, grpo: { steps: 1, groupSize: G, samplesPerBatch: 1, advantageMode: 'scalar' },
  });
  const { c } = await testCoordinator(config, 'r26a-version-pub', { publishedProgress: async () => ({ version: 3, lastBatchSeq: 1 }) });
  const learner = fakeSession('LEARNER', 'l');
  c.attach(learner);
  c.start();
  await until(() => learner.sent.some((m) => m.train_batch?.batch_seq === 1), 'batch 1 sent');
  const b1 = learner.sent.find((m) => m.train_batch?.batch_seq === 1)!.train_batch!;
  c.handle(learner, { train_result: { batch_id: b1.batch_id, batch_seq: 1, applied: true, skipped_reason: '', version: 3, loss: 0, compute_ms: 1 } } as unknown as WorkerMessage__Output);
  await until(() => c.state.ackedSeq === 1, 'batch 1 acknowledged');
  assert.equal(c.state.learnerVersion, 3);
  c.close();
});

// Lower: a result from a worker that does not hold its task is counted and dropped before it is decoded; a malformed one
// was decoded and logged ("rejected a message ...") for every such message before the holder check refused it.
test('review26a: a malformed result for a task the sender does not hold is counted as foreign, not decoded or logged', async () => {
  const config = parseConfig({
    run: { id: 'r26a-holder', seed: 1 }, data: { size: H, source: { kind: 'procedural', count: 16 } }, model: { width: 4, depth: 1 },
    sft: { steps: 0 }, grpo: { steps: 1, groupSize: G, samplesPerBatch: 1, maxStaleness: 0, advantageMode: 'scalar' },
  });
  const { c, log, metrics } = await testCoordinator(config, 'r26a-holder');
  const roll = fakeSession('ROLLOUT', 'r');
  const thief = fakeSession('ROLLOUT', 'thief');
  const reward = fakeSession('REWARD', 's');
  const rthief = fakeSession('REWARD', 'sthief');
  for (const s of [roll, thief, reward, rthief, fakeSession('LEARNER', 'l')]) c.attach(s);
  c.start();
  const rollouts = (s: typeof roll) => s.sent.flatMap((m) => (m.rollout_task ? [m.rollout_task] : m.task_bundle?.rollout_tasks ?? []));
  await until(() => rollouts(roll).length + rollouts(thief).length === 1, 'the rollout task dispatched');
  const [holder, other] = rollouts(roll).length ? [roll, thief] : [thief, roll];
  const t = rollouts(holder)[0]!;
  const foreign = async () => (await metrics.registry.getSingleMetric('recovery_grpo_foreign_results_total')!.get()).values.reduce((n, v) => n + v.value, 0);
  for (let i = 0; i < 3; i++) c.handle(other, { rollout_result: { task_id: t.task_id, attempt: 1, policy_version: 0, items: [], compute_ms: 1 } } as unknown as WorkerMessage__Output);
  assert.equal(await foreign(), 3);
  // the holder's result is still taken; then the score task, and a malformed score from the reward worker not holding it
  const action = () => encodeTensor({ dtype: 'float32', shape: [3, H, H], data: new Float32Array(3 * H * H).fill(0.5) });
  c.handle(holder, { rollout_result: { task_id: t.task_id, attempt: t.attempt, policy_version: 0, items: Array.from({ length: G }, (_, g) => ({ sample_id: t.items![0]!.sample_id, group_index: g, action: action(), logp: -1 })), compute_ms: 1 } } as unknown as WorkerMessage__Output);
  const scoreOf = (s: typeof reward) => s.sent.find((m) => m.score_task)?.score_task;
  await until(() => (scoreOf(reward) ?? scoreOf(rthief)) !== undefined, 'the score task dispatched');
  const [sholder, sother] = scoreOf(reward) ? [reward, rthief] : [rthief, reward];
  const st = scoreOf(sholder)!;
  c.handle(sother, { score_result: { task_id: st.task_id, attempt: 1, components: [{ ssim: Number.NaN, clip_cos: 0 }], compute_ms: 1 } } as unknown as WorkerMessage__Output);
  assert.equal(await foreign(), 4);
  assert.deepEqual(log.filter((l) => /rejected a message/.test(l)), [], 'nothing logged for results of tasks the sender does not hold');
  c.close();
});
