// A TrainResult names the batch it answers by content (TrainResult.batch_digest, docs/reliability.md): after an
// orchestrator restart the batch under a seq is rebuilt with other rollouts, and a result of the earlier process's
// batch, reaching the new process, must be neither the rebuilt batch's acknowledgement nor evidence against its
// rollout workers. Real nats-server, two orchestrator processes one after the other (gRPC on 127.0.0.1), a real
// reward worker; the rollout workers and the learner are gRPC clients scripted here (a real learner would need a
// published policy for a real rollout worker, and the point is the exact result it sends).
// Before round 26 (trust26a) the new process took the old batch's result for its own: it named the rebuilt batch's
// rollout worker as the author of the old batch's excluded rows and acknowledged its batch with it.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseConfig } from '../../lib/config/index.ts';
import { runOrchestrator } from '../../orchestrator/main.ts';
import { runRewardWorker } from '../../reward-worker/index.ts';
import { silentLogger } from '../../lib/worker/index.ts';
import { trainBatchDigest } from '../../lib/transport/index.ts';
import { scriptedLearner, scriptedRollout, until } from '../helpers/scripted-workers.ts';
import { startNatsServer } from '../helpers/nats.ts';
import { events } from './helpers.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => { for (const c of cleanups.reverse()) await c().catch(() => undefined); });

test('after an orchestrator restart, the earlier process\'s batch\'s TrainResult is neither the rebuilt batch\'s acknowledgement nor attributed to its rollout worker', { timeout: 120_000 }, async () => {
  const nats = await startNatsServer();
  cleanups.push(() => nats.stop());
  const dir = mkdtempSync(join(tmpdir(), 'result-digest-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const config = parseConfig({
    run: { id: 'result-digest', seed: 1 }, data: { size: 16, source: { kind: 'procedural', count: 16 } }, model: { width: 4, depth: 1 },
    sft: { steps: 0 }, grpo: { steps: 1, groupSize: 2, samplesPerBatch: 2, maxStaleness: 0, advantageMode: 'scalar' },
    orchestrator: { bundleMs: 0, leaseSeconds: 30 },
  });
  const common = { nats: nats.url, metricsPort: 0, logger: silentLogger, handleSignals: false } as const;
  const eventsFile = join(dir, 'events.jsonl');

  // the first process: batch 1 built from worker "old"'s rollouts (logp -1), sent to the learner; then it stops
  const logA: string[] = [];
  const a = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: nats.url, metricsPort: 0, eventsFile, log: (l) => logA.push(l) });
  const rewardA = await runRewardWorker({ ...common, orchestrator: a.address, workerId: 's' });
  const oldRollout = await scriptedRollout(a.address, 'old', -1);
  const learnerA = await scriptedLearner(a.address);
  await until(() => learnerA.batches.length > 0, 'batch 1 at the learner (first process)', logA);
  const old = learnerA.batches[0]!;
  assert.equal(old.batch_seq, 1);
  await learnerA.conn.close();
  await oldRollout.close();
  await rewardA.stop({ graceMs: 1000 });
  await a.stop();

  // the second process rebuilds batch 1 from worker "new"'s rollouts (logp -2): another content under seq 1
  const logB: string[] = [];
  const b = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: nats.url, metricsPort: 0, eventsFile, log: (l) => logB.push(l) });
  cleanups.push(() => b.stop());
  const rewardB = await runRewardWorker({ ...common, orchestrator: b.address, workerId: 's' });
  cleanups.push(() => rewardB.stop({ graceMs: 1000 }));
  const newRollout = await scriptedRollout(b.address, 'new', -2);
  cleanups.push(() => newRollout.close());
  const learnerB = await scriptedLearner(b.address);
  cleanups.push(() => learnerB.conn.close());
  await until(() => learnerB.batches.length > 0, 'batch 1 at the learner (second process)', logB);
  const rebuilt = learnerB.batches[0]!;
  assert.equal(rebuilt.batch_seq, 1);
  assert.notEqual(trainBatchDigest(rebuilt), trainBatchDigest(old), 'the rebuilt batch has other content');

  // the learner trained the old batch (its rows all excluded) and its result reaches the second process
  const n = old.sample_ids.length;
  await learnerB.conn.send({ train_result: { batch_id: old.batch_id, batch_seq: 1, applied: true, version: 1, loss: 0.5, excluded_actions: Array.from({ length: n }, (_, i) => i), batch_digest: trainBatchDigest(old) } });
  // not taken: logged, counted, and batch 1 sent again
  await until(() => learnerB.batches.length >= 2, 'batch 1 sent again after the mismatched result', logB);
  const why = () => logB.join('\n');
  assert.ok(logB.some((l) => /^ignoring a train_result for batch 1 \(applied, version 1\) of another batch than the one held under that seq .*its 4 excluded actions not attributed/.test(l)), why());
  assert.ok(!logB.some((l) => /of rollout worker new/.test(l)), `the rebuilt batch's rollout worker is not blamed\n${why()}`);
  assert.equal(b.coordinator.state.ackedSeq, 0, 'batch 1 is not acknowledged by another batch\'s result');
  const metrics = await (await fetch(`${b.metricsUrl}/metrics`)).text();
  assert.match(metrics, /recovery_grpo_train_result_digests_total\{[^}]*outcome="mismatch"[^}]*\} 1/);
  assert.ok(!/rollout_rows_excluded_total\{[^}]*worker_id="new"/.test(metrics), metrics);
  assert.equal(trainBatchDigest(learnerB.batches[1]!), trainBatchDigest(rebuilt), 'the batch sent again is the rebuilt one');

  // the learner, which handled seq 1 already, answers the rebuilt batch 'duplicate': that acknowledges seq 1, once
  await learnerB.conn.send({ train_result: { batch_id: rebuilt.batch_id, batch_seq: 1, applied: false, skipped_reason: 'duplicate', version: 1, batch_digest: trainBatchDigest(rebuilt) } });
  await b.done;
  assert.equal(b.coordinator.state.ackedSeq, 1);
  const trained = events(dir).filter((e) => e.type === 'trained');
  assert.deepEqual(trained.map((e) => e.seq), [1], 'seq 1 acknowledged once');
});

test('a TrainResult whose digest matches the batch is taken: its excluded actions are attributed to that batch\'s rollout worker', { timeout: 60_000 }, async () => {
  const nats = await startNatsServer();
  cleanups.push(() => nats.stop());
  const config = parseConfig({
    run: { id: 'result-digest-match', seed: 1 }, data: { size: 16, source: { kind: 'procedural', count: 16 } }, model: { width: 4, depth: 1 },
    sft: { steps: 0 }, grpo: { steps: 1, groupSize: 2, samplesPerBatch: 2, maxStaleness: 0, advantageMode: 'scalar' },
    orchestrator: { bundleMs: 0, leaseSeconds: 30 },
  });
  const log: string[] = [];
  const o = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: nats.url, metricsPort: 0, log: (l) => log.push(l) });
  cleanups.push(() => o.stop());
  const reward = await runRewardWorker({ nats: nats.url, metricsPort: 0, logger: silentLogger, handleSignals: false, orchestrator: o.address, workerId: 's' });
  cleanups.push(() => reward.stop({ graceMs: 1000 }));
  const rollout = await scriptedRollout(o.address, 'w', -1);
  cleanups.push(() => rollout.close());
  const learner = await scriptedLearner(o.address);
  cleanups.push(() => learner.conn.close());
  await until(() => learner.batches.length > 0, 'batch 1 at the learner', log);
  const batch = learner.batches[0]!;
  await learner.conn.send({ train_result: { batch_id: batch.batch_id, batch_seq: 1, applied: true, version: 1, excluded_actions: [0, 1], batch_digest: trainBatchDigest(batch) } });
  await o.done;
  assert.ok(log.some((l) => /^GRPO batch 1: the learner excluded 2 actions of rollout worker w /.test(l)), log.join('\n'));
  const metrics = await (await fetch(`${o.metricsUrl}/metrics`)).text();
  assert.match(metrics, /recovery_grpo_train_result_digests_total\{[^}]*outcome="match"[^}]*\} 1/);
});
