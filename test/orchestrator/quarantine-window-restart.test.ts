// The quarantine window's counts survive an orchestrator restart (round 29; docs/security.md, "Forged log-densities"):
// each acknowledgement stores, beside the quarantined ids, every worker id's excluded results still in its window
// (RunState.quarantineWindows), and a restarted orchestrator goes on counting from them. Before round 29 only the ids
// were stored: a forger restarted around (or an orchestrator killed often) was counted from zero. Real nats-server,
// two orchestrator processes one after the other (gRPC on 127.0.0.1), a real reward worker; the rollout worker (a
// forger answering with logp_old -1) and the learner (its TrainResult excluding one of the forger's groups per batch)
// are scripted clients. A run state stored before round 29 (no counts) still loads.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../lib/config/index.ts';
import { batchLayout } from '../../lib/grpo/sampling.ts';
import { runOrchestrator, type RunningOrchestrator } from '../../orchestrator/main.ts';
import { runRewardWorker } from '../../reward-worker/index.ts';
import { silentLogger } from '../../lib/worker/index.ts';
import { connectToOrchestrator, connectNats, RunStateStore, TransportError, trainBatchDigest, type TrainBatch__Output } from '../../lib/transport/index.ts';
import { startNatsServer } from '../helpers/nats.ts';
import { capabilities, scriptedLearner, scriptedRollout, until } from '../helpers/scripted-workers.ts';
import { z } from 'zod';

const cleanups: Array<() => Promise<void>> = [];
after(async () => { for (const c of cleanups.reverse()) await c().catch(() => undefined); });

const PERMISSION_DENIED = 7;

/** The rows of the batch's first group (every row whose sample id is the first row's): the learner excludes them. */
const firstGroup = (b: TrainBatch__Output) => b.sample_ids.flatMap((id, i) => (id === b.sample_ids[0] ? [i] : []));

const stateSchema = z.object({ ackedSeq: z.number(), learnerVersion: z.number(), quarantined: z.array(z.string()).optional(), quarantineWindows: z.record(z.string(), z.array(z.number())).optional() });

test('the quarantine window\'s count goes on after an orchestrator restart: one exclusion before, one after, quarantined at 2', { timeout: 120_000 }, async () => {
  const nats = await startNatsServer();
  cleanups.push(() => nats.stop());
  const config = parseConfig({
    run: { id: 'quarantine-window-restart', seed: 1 }, data: { size: 16, source: { kind: 'procedural', count: 16 } }, model: { width: 4, depth: 1 },
    sft: { steps: 0 }, grpo: { steps: 3, groupSize: 2, samplesPerBatch: 2, maxStaleness: 0, advantageMode: 'scalar', quarantineAfter: 2, quarantineWindow: 10 },
    orchestrator: { bundleMs: 0, leaseSeconds: 30 },
  });
  const start = async (log: string[]): Promise<RunningOrchestrator> => {
    const o = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: nats.url, metricsPort: 0, log: (l) => log.push(l) });
    cleanups.push(() => o.stop());
    return o;
  };
  /** One process: the forger rolls out batch `seq`; the learner excludes the batch's first group; acknowledged. */
  const oneBatch = async (seq: number, log: string[]) => {
    const o = await start(log);
    const reward = await runRewardWorker({ nats: nats.url, metricsPort: 0, logger: silentLogger, handleSignals: false, orchestrator: o.address, workerId: 's' });
    const forger = await scriptedRollout(o.address, 'forger', -1);
    const learner = await scriptedLearner(o.address);
    cleanups.push(() => reward.stop({ graceMs: 1000 }), () => forger.close(), () => learner.conn.close());
    await until(() => learner.batches.some((b) => b.batch_seq === seq), `batch ${seq} at the learner`, log);
    const b = learner.batches.find((x) => x.batch_seq === seq)!;
    // both groups are the forger's (the only rollout worker): its results in batch order are [excluded, clean]
    assert.equal(new Set(b.sample_ids).size, 2);
    await learner.conn.send({ train_result: { batch_id: b.batch_id, batch_seq: seq, applied: true, version: seq, excluded_actions: firstGroup(b), batch_digest: trainBatchDigest(b) } });
    await until(() => o.coordinator.state.ackedSeq === seq, `batch ${seq} acknowledged`, log);
    return { o, reward, forger, learner };
  };

  // the first process: 1 excluded result of the forger's 2 checked: below quarantineAfter 2
  const logA: string[] = [];
  const a = await oneBatch(1, logA);
  assert.equal(a.o.coordinator.state.quarantined, undefined, logA.join('\n'));
  await a.forger.close();
  await a.learner.conn.close();
  await a.reward.stop({ graceMs: 1000 });
  await a.o.stop();

  // the run state holds the forger's window: its excluded result, 1 result before its newest
  const nc = await connectNats({ url: nats.url, name: 'quarantine-window-restart-test' });
  cleanups.push(() => nc.close());
  const store = await RunStateStore.open(nc, { runId: config.run.id, schema: stateSchema });
  assert.deepEqual((await store.get())?.value, { ackedSeq: 1, learnerVersion: 1, quarantineWindows: { forger: [1] } });

  // the second process goes on from it: a second excluded result (2 of its last 10) quarantines the forger. Before
  // round 29 its count started from zero here (1 of 2) and it was not quarantined.
  const logB: string[] = [];
  const b = await oneBatch(2, logB);
  assert.ok(logB.some((l) => /^the quarantine windows of 1 rollout worker id\(s\) go on from the run state/.test(l)), logB.join('\n'));
  assert.deepEqual(b.o.coordinator.state.quarantined, ['forger'], logB.join('\n'));
  assert.ok(logB.some((l) => /^quarantined rollout worker forger: .*excluded rows of 2 of its last 10 checked rollout results/.test(l)), logB.join('\n'));
  const end = await b.forger.closed;
  assert.equal(end.code, PERMISSION_DENIED, logB.join('\n'));
  // stored with the acknowledgement: the id; a quarantined id's window is not stored (it is refused anyway)
  assert.deepEqual((await store.get())?.value, { ackedSeq: 2, learnerVersion: 2, quarantined: ['forger'] });
  await b.learner.conn.close();
  await b.reward.stop({ graceMs: 1000 });
  await b.o.stop();
});

test('a run state stored before round 29 (no quarantine counts) loads: the run resumes, its quarantined ids stay refused', { timeout: 60_000 }, async () => {
  const nats = await startNatsServer();
  cleanups.push(() => nats.stop());
  const config = parseConfig({
    run: { id: 'quarantine-window-old-state', seed: 1 }, data: { size: 16, source: { kind: 'procedural', count: 16 } }, model: { width: 4, depth: 1 },
    sft: { steps: 0 }, grpo: { steps: 3, groupSize: 2, samplesPerBatch: 2, maxStaleness: 0, advantageMode: 'scalar', quarantineAfter: 2, quarantineWindow: 10 },
    orchestrator: { bundleMs: 0, leaseSeconds: 30 },
  });
  const nc = await connectNats({ url: nats.url, name: 'quarantine-window-old-state-test' });
  cleanups.push(() => nc.close());
  // as round 28 wrote it
  const store = await RunStateStore.open(nc, { runId: config.run.id, schema: z.object({ ackedSeq: z.number(), learnerVersion: z.number(), quarantined: z.array(z.string()).optional(), batchLayout: z.record(z.string(), z.unknown()) }) });
  await store.create({ ackedSeq: 1, learnerVersion: 1, quarantined: ['old'], batchLayout: { ...batchLayout(config) } });
  const log: string[] = [];
  const o = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: nats.url, metricsPort: 0, log: (l) => log.push(l) });
  cleanups.push(() => o.stop());
  assert.ok(log.some((l) => /^resuming run quarantine-window-old-state after batch 1 \(policy version 1\)$/.test(l)), log.join('\n'));
  assert.ok(!log.some((l) => /quarantine windows/.test(l)), log.join('\n'));
  await assert.rejects(connectToOrchestrator({ address: o.address, role: 'ROLLOUT', workerId: 'old', capabilities }),
    (e: unknown) => e instanceof TransportError && e.code === PERMISSION_DENIED && /worker old is quarantined for the rest of the run/.test(e.details));
  assert.deepEqual(o.coordinator.state, { ackedSeq: 1, learnerVersion: 1, quarantined: ['old'] });
  await o.stop();
});
