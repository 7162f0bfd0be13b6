// A GRPO batch whose every group was dropped (here: each rollout task failing 5 times) is sent to the learner
// without samples or tensors, and its acknowledgement (applied=false, skipped_reason 'empty') moves the run on:
// it is counted once and recorded with no samples, the run completes. Before, the
// orchestrator sent tensors of zero rows, the learner refused them as bad input and the run failed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../lib/config/index.ts';
import { openRunDataset } from '../../lib/config/dataset.ts';
import { createMetrics } from '../../lib/metrics/index.ts';
import type { WorkerMessage__Output } from '../../lib/transport/index.ts';
import { Coordinator } from '../../orchestrator/coordinator.ts';
import type { RunEvent, RunState } from '../../orchestrator/run-state.ts';
import { decodeTrainBatch, isEmptyGrpoBatch } from '../../learner/batch.ts';
import { fakeSession, until } from '../helpers/fake-session.ts';

test('a GRPO batch whose groups were all dropped is sent without samples, acknowledged as empty once, and the run goes on', async () => {
  const config = parseConfig({
    run: { id: 'empty-batch', seed: 1 },
    data: { size: 16, source: { kind: 'procedural', count: 16 } },
    model: { width: 4, depth: 1 },
    sft: { steps: 0 },
    grpo: { steps: 1, groupSize: 2, samplesPerBatch: 2, maxStaleness: 0, advantageMode: 'scalar' },
  });
  const events: RunEvent[] = [];
  const persisted: RunState[] = [];
  const log: string[] = [];
  const c = new Coordinator({
    config, dataset: await openRunDataset(config, 'train'), metrics: createMetrics('empty-batch', 'orchestrator'),
    state: { ackedSeq: 0, learnerVersion: 0 }, persist: async (s) => void persisted.push({ ...s }), onEvent: (e) => events.push(e), log: (l) => log.push(l),
  });
  const roll = fakeSession('ROLLOUT', 'r');
  const learner = fakeSession('LEARNER', 'l');
  c.attach(roll);
  c.attach(learner);
  c.start();

  // batch 1: both rollout tasks fail 5 times (policy_unavailable, as after a lost store): both samples dropped
  const failed = new Set<string>();
  const pending = () => roll.sent.find((m) => m.rollout_task && !failed.has(`${m.rollout_task.task_id}/${m.rollout_task.attempt}`))?.rollout_task;
  while (events.filter((e) => e.type === 'dropped').length < 2) {
    await until(() => pending() !== undefined || events.filter((e) => e.type === 'dropped').length === 2, 'a rollout task dispatched again');
    const t = pending();
    if (!t) break;
    failed.add(`${t.task_id}/${t.attempt}`);
    c.handle(roll, { task_error: { task_id: t.task_id, attempt: t.attempt, code: 'policy_unavailable', message: 'no policy', retryable: true } } as WorkerMessage__Output);
  }
  await until(() => learner.sent.length === 1, 'batch 1 sent to the learner');
  assert.equal(events.filter((e) => e.type === 'dropped').length, 2, log.join('\n'));
  const tb = learner.sent[0]!.train_batch!;
  assert.deepEqual([tb.batch_seq, tb.kind, tb.sample_ids, tb.images, tb.actions, tb.advantages], [1, 'GRPO', [], undefined, undefined, undefined]);
  assert.ok(isEmptyGrpoBatch(tb as never), 'the learner recognises it as empty');
  assert.throws(() => decodeTrainBatch(tb as never, { height: 16, width: 16 }), /train_batch\.actions: tensor is missing/, 'and would refuse it as a batch to train');

  // the learner records it (version + 1, nothing trained): acknowledged once, no samples trained
  const ack = (seq: number, version: number, applied: boolean, reason: string) =>
    c.handle(learner, { train_result: { batch_id: `empty-batch-b${seq}`, batch_seq: seq, applied, skipped_reason: reason, version, loss: 0, compute_ms: 1 } } as WorkerMessage__Output);
  ack(1, 1, false, 'empty');
  await until(() => c.state.ackedSeq === 1, 'batch 1 acknowledged');
  ack(1, 1, false, 'empty');
  const trained = events.filter((e): e is Extract<RunEvent, { type: 'trained' }> => e.type === 'trained');
  assert.deepEqual(trained.map((e) => [e.seq, e.applied, e.reason, e.samples]), [[1, false, 'empty', []]]);
  assert.deepEqual(persisted, [{ ackedSeq: 1, learnerVersion: 1 }]);

  await c.done; // the run's one batch is acknowledged: complete
  assert.equal(c.phase, 'done');
  c.close();
});
