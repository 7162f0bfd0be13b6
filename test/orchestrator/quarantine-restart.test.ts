// The quarantine survives an orchestrator restart (docs/security.md, "Forged log-densities"): it is stored in the run
// state with the acknowledgement of the batch whose TrainResult quarantined the worker id, and a restarted
// orchestrator refuses that id (PERMISSION_DENIED) until --lift-quarantine names it. Real nats-server, three
// orchestrator processes one after the other (gRPC on 127.0.0.1), a real reward worker; the rollout worker (a forger
// answering with logp_old -1) and the learner (its TrainResult excluding the forger's actions) are scripted clients.
// Before round 26 (trust26a) the quarantine lived in memory: the restarted orchestrator let the forger back in.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../lib/config/index.ts';
import { runOrchestrator, type RunningOrchestrator } from '../../orchestrator/main.ts';
import { runRewardWorker } from '../../reward-worker/index.ts';
import { silentLogger } from '../../lib/worker/index.ts';
import { connectToOrchestrator, connectNats, RunStateStore, TransportError, trainBatchDigest } from '../../lib/transport/index.ts';
import { startNatsServer } from '../helpers/nats.ts';
import { capabilities, scriptedLearner, scriptedRollout, until } from '../helpers/scripted-workers.ts';
import { z } from 'zod';

const cleanups: Array<() => Promise<void>> = [];
after(async () => { for (const c of cleanups.reverse()) await c().catch(() => undefined); });

const PERMISSION_DENIED = 7;

test('a quarantined rollout worker id is still refused after the orchestrator restarts, until --lift-quarantine names it', { timeout: 120_000 }, async () => {
  const nats = await startNatsServer();
  cleanups.push(() => nats.stop());
  const config = parseConfig({
    run: { id: 'quarantine-restart', seed: 1 }, data: { size: 16, source: { kind: 'procedural', count: 16 } }, model: { width: 4, depth: 1 },
    sft: { steps: 0 }, grpo: { steps: 3, groupSize: 2, samplesPerBatch: 2, maxStaleness: 0, advantageMode: 'scalar', quarantineAfter: 1 },
    orchestrator: { bundleMs: 0, leaseSeconds: 30 },
  });
  const start = async (log: string[], liftQuarantine?: string[]): Promise<RunningOrchestrator> => {
    const o = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: nats.url, metricsPort: 0, log: (l) => log.push(l), ...(liftQuarantine ? { liftQuarantine } : {}) });
    cleanups.push(() => o.stop());
    return o;
  };

  // the first process: batch 1 rolled out by the forger; the learner excludes all its actions: quarantined (after 1)
  const logA: string[] = [];
  const a = await start(logA);
  const reward = await runRewardWorker({ nats: nats.url, metricsPort: 0, logger: silentLogger, handleSignals: false, orchestrator: a.address, workerId: 's' });
  const forger = await scriptedRollout(a.address, 'forger', -1);
  const learner = await scriptedLearner(a.address);
  cleanups.push(() => reward.stop({ graceMs: 1000 }), () => forger.close(), () => learner.conn.close());
  await until(() => learner.batches.length > 0, 'batch 1 at the learner', logA);
  const b1 = learner.batches[0]!;
  await learner.conn.send({ train_result: { batch_id: b1.batch_id, batch_seq: 1, applied: true, version: 1, excluded_actions: b1.sample_ids.map((_, i) => i), batch_digest: trainBatchDigest(b1) } });
  await until(() => a.coordinator.state.ackedSeq === 1, 'batch 1 acknowledged', logA);
  const end = await forger.closed;
  assert.equal(end.code, PERMISSION_DENIED, logA.join('\n'));
  assert.deepEqual(a.coordinator.state.quarantined, ['forger']);
  await learner.conn.close();
  await reward.stop({ graceMs: 1000 });
  await a.stop();

  // the run state holds it
  const nc = await connectNats({ url: nats.url, name: 'quarantine-restart-test' });
  cleanups.push(() => nc.close());
  const store = await RunStateStore.open(nc, { runId: config.run.id, schema: z.object({ ackedSeq: z.number(), learnerVersion: z.number(), quarantined: z.array(z.string()).optional() }) });
  assert.deepEqual((await store.get())?.value, { ackedSeq: 1, learnerVersion: 1, quarantined: ['forger'] });

  // a second process refuses the id before any Welcome, naming why; another rollout worker id is let in
  const logB: string[] = [];
  const b = await start(logB);
  assert.ok(logB.some((l) => /^1 rollout worker id\(s\) quarantined earlier in the run stay refused: "forger"$/.test(l)), logB.join('\n'));
  await assert.rejects(connectToOrchestrator({ address: b.address, role: 'ROLLOUT', workerId: 'forger', capabilities }),
    (e: unknown) => e instanceof TransportError && e.code === PERMISSION_DENIED && /worker forger is quarantined for the rest of the run: an earlier orchestrator process of the run quarantined it/.test(e.details));
  const other = await connectToOrchestrator({ address: b.address, role: 'ROLLOUT', workerId: 'honest', capabilities });
  await other.close();
  // a learner or reward worker using that id is not refused (the quarantine is of a rollout worker id)
  const sameIdReward = await connectToOrchestrator({ address: b.address, role: 'REWARD', workerId: 'forger', capabilities });
  await sameIdReward.close();
  await b.stop();

  // a third process started with --lift-quarantine forger lets it in
  const logC: string[] = [];
  const c = await start(logC, ['forger', 'nobody']);
  assert.ok(logC.some((l) => /^quarantine of rollout worker "forger" lifted \(--lift-quarantine\)/.test(l)), logC.join('\n'));
  assert.ok(logC.some((l) => /^--lift-quarantine "nobody": no such worker id is quarantined/.test(l)), logC.join('\n'));
  const back = await connectToOrchestrator({ address: c.address, role: 'ROLLOUT', workerId: 'forger', capabilities });
  await back.close();
  assert.equal(c.coordinator.state.quarantined, undefined);
  await c.stop();
});
