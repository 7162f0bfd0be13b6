// No false "run state was lost" (round 33, review33 F3). A learner's checkpoint newer than the run state's
// acknowledgement is not by itself a lost state: the learner may have published batch 1 and then died before its
// TrainResult, or the orchestrator may have restarted before storing the acknowledgement. Neither may say the state
// was lost, count run_state_lost_total or take anything back. Real nats-server, orchestrators on 127.0.0.1, a real
// reward worker; the learner and the rollout worker are scripted clients, and the checkpoint is announced as the
// learner announces it (last_batch_seq, last_batch_id, worker_ids in the meta).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, type RunConfig } from '../../lib/config/index.ts';
import { runOrchestrator } from '../../orchestrator/main.ts';
import { runRewardWorker } from '../../reward-worker/index.ts';
import { silentLogger } from '../../lib/worker/index.ts';
import { CheckpointStore, connectNats, connectToOrchestrator, sha256Digest, workerIdsFromWire, workerIdsText, WORKER_IDS_META_KEY, type TrainBatch__Output } from '../../lib/transport/index.ts';
import { batchLayout } from '../../lib/grpo/sampling.ts';
import { startNatsServer } from '../helpers/nats.ts';
import { scrapeMetric } from '../helpers/metrics.ts';
import { capabilities, scriptedLearner, scriptedRollout, until } from '../helpers/scripted-workers.ts';

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => { for (const c of cleanups.reverse()) await c().catch(() => undefined); });

const configOf = (id: string) => parseConfig({
  run: { id, seed: 1 }, data: { size: 16, source: { kind: 'procedural', count: 16 } }, model: { width: 4, depth: 1 },
  sft: { steps: 0 }, grpo: { steps: 4, groupSize: 2, samplesPerBatch: 2, maxStaleness: 0, advantageMode: 'scalar', quarantineAfter: 1 },
  orchestrator: { bundleMs: 0, leaseSeconds: 30 },
});

/** The learner's checkpoint v1 of batch `b`, announced as it announces one (worker_ids as the batch carried them). */
async function publishV1(natsUrl: string, config: RunConfig, b: TrainBatch__Output): Promise<void> {
  const nc = await connectNats({ url: natsUrl, name: 'false-alarm-test' });
  const bytes = new TextEncoder().encode('checkpoint v1');
  const ids = workerIdsFromWire(b.worker_ids);
  assert.ok(ids, 'batch 1 carries worker_ids');
  await (await CheckpointStore.open(nc, { runId: config.run.id })).put(1, bytes, sha256Digest(bytes), {
    step: 1, last_batch_id: b.batch_id, last_batch_seq: String(b.batch_seq), batch_layout: JSON.stringify(batchLayout(config)), [WORKER_IDS_META_KEY]: workerIdsText(ids),
  });
  await nc.close();
}

/**
 * An orchestrator with a reward worker, an honest scripted rollout worker and a scripted learner, run until the learner
 * holds batch 1 and has published v1 of it; the learner then disconnects before sending its TrainResult.
 */
async function batchOnePublished(config: RunConfig, natsUrl: string, log: string[]) {
  const o = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl, metricsPort: 0, log: (l) => log.push(l) });
  const reward = await runRewardWorker({ nats: natsUrl, metricsPort: 0, logger: silentLogger, handleSignals: false, orchestrator: o.address, workerId: 's' });
  const roll = await scriptedRollout(o.address, 'honest', -1);
  const learner = await scriptedLearner(o.address);
  await until(() => learner.batches.length > 0, 'batch 1 at the learner', log);
  await publishV1(natsUrl, config, learner.batches[0]!);
  await learner.conn.close();
  return { o, reward, roll };
}

const lostLine = (log: string[]) => log.filter((l) => l.startsWith('WARNING: ') && l.includes('the run state was lost'));

test('a learner restarted between publishing batch 1 and its TrainResult: caught up, no loss said or counted', { timeout: 60_000 }, async () => {
  const config = configOf('false-alarm-catch-up');
  const n = await startNatsServer();
  cleanups.push(() => n.stop());
  const log: string[] = [];
  const { o, reward, roll } = await batchOnePublished(config, n.url, log);
  cleanups.push(() => o.stop(), () => reward.stop({ graceMs: 1000 }), () => roll.close());
  const again = await connectToOrchestrator({ address: o.address, role: 'LEARNER', workerId: 'l', capabilities, hello: { last_batch_seq: 1, policy_version: 1 } });
  cleanups.push(() => again.close());
  await until(() => o.coordinator.state.ackedSeq === 1, 'caught up to batch 1', log);
  assert.equal(lostLine(log).length, 0, lostLine(log).join('\n'));
  assert.equal(await scrapeMetric(o.metricsUrl, 'run_state_lost_total'), 0);
});

test('an orchestrator restarted after batch 1 was published but before its acknowledgement was stored: no loss at start or catch-up', { timeout: 60_000 }, async () => {
  const config = configOf('false-alarm-start');
  const n = await startNatsServer();
  cleanups.push(() => n.stop());
  const { o: a, reward, roll } = await batchOnePublished(config, n.url, []);
  await roll.close();
  await reward.stop({ graceMs: 1000 });
  await a.stop();
  const log: string[] = [];
  const b = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: n.url, metricsPort: 0, log: (l) => log.push(l) });
  cleanups.push(() => b.stop());
  assert.ok(log.some((l) => l.startsWith('resuming run')), 'the stored state was found: ' + log.join('\n'));
  const again = await connectToOrchestrator({ address: b.address, role: 'LEARNER', workerId: 'l', capabilities, hello: { last_batch_seq: 1, policy_version: 1 } });
  cleanups.push(() => again.close());
  await until(() => b.coordinator.state.ackedSeq === 1, 'caught up to batch 1', log);
  assert.equal(lostLine(log).length, 0, lostLine(log).join('\n'));
  assert.equal(await scrapeMetric(b.metricsUrl, 'run_state_lost_total'), 0);
});
