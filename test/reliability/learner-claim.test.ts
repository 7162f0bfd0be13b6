// A learner's claimed progress is checked, never believed (issue #16, probe 1): a client with the run's token
// that connects as the learner and claims `last_batch_seq=3, policy_version=424242` in its Hello moved the run
// to `done` with batches nothing trained. Now the orchestrator catches up only as far as the newest announced
// checkpoint (whose object exists) records. Real orchestrator (gRPC on 127.0.0.1), real nats-server.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, type RunConfig } from '../../lib/config/index.ts';
import { CheckpointStore, connectNats, connectToOrchestrator, sha256Digest, type OrchestratorConnection, type OrchestratorMessage__Output } from '../../lib/transport/index.ts';
import { runOrchestrator, type RunningOrchestrator } from '../../orchestrator/main.ts';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { events, type Trained } from './helpers.ts';
import { waitFor } from '../helpers/wait.ts';

let nats: TestNatsServer;
const running: RunningOrchestrator[] = [];
const conns: OrchestratorConnection[] = [];

before(async () => {
  nats = await startNatsServer();
});

after(async () => {
  for (const c of conns) await c.close().catch(() => undefined);
  for (const o of running) await o.stop();
  await nats?.stop();
});

function runConfig(id: string): RunConfig {
  return parseConfig({
    run: { id, seed: 1 },
    data: { size: 16, source: { kind: 'procedural', count: 16 } },
    model: { width: 4, depth: 1 },
    sft: { steps: 3, batchSize: 2 },
    grpo: { steps: 0 },
  });
}

/**
 * An orchestrator and a client that says it is the learner, holding `claimed` batches at `version` (undefined: a new
 * learner process, whose Hello says nothing of its progress).
 */
async function claim(runId: string, claimed: number | undefined, version: number | undefined, eventsFile?: string) {
  const log: string[] = [];
  const orch = await runOrchestrator({ config: runConfig(runId), listen: '127.0.0.1:0', natsUrl: nats.url, metricsPort: 0, log: (l) => log.push(l), ...(eventsFile ? { eventsFile } : {}) });
  running.push(orch);
  const conn = await connectToOrchestrator({
    address: `127.0.0.1:${orch.port}`, role: 'LEARNER', workerId: 'impostor',
    capabilities: { device: 'cpu', max_batch: 1, max_in_flight: 1 },
    hello: claimed === undefined ? {} : { last_batch_seq: claimed, policy_version: version },
  });
  conns.push(conn);
  const got: OrchestratorMessage__Output[] = [];
  void (async () => {
    try {
      for await (const m of conn.messages) got.push(m);
    } catch {
      // closed by the test
    }
  })();
  return { orch, log, got, conn };
}

test('a learner\'s Hello claim with nothing published moves nothing: the run is not done, batch 1 is sent', { timeout: 60_000 }, async () => {
  const { orch, log, got } = await claim('claim-none', 3, 424242);
  await waitFor(() => log.find((l) => /claims batch 3, but its newest published checkpoint does not exist: not caught up/.test(l)), 'the refusal', log);
  const first = await waitFor(() => got.find((m) => m.train_batch), 'a train batch', log);
  assert.equal(first.train_batch!.batch_seq, 1, 'the batches are re-sent from the first');
  assert.deepEqual(orch.coordinator.state, { ackedSeq: 0, learnerVersion: 0 });
  assert.notEqual(orch.coordinator.phase, 'done');
});

test('a claim past the published checkpoint is caught up only as far as the checkpoint records', { timeout: 60_000 }, async () => {
  // the learner published v1 after batch 2 (the orchestrator was down when it was acknowledged)
  const nc = await connectNats({ url: nats.url, name: 'claim-test' });
  const store = await CheckpointStore.open(nc, { runId: 'claim-some' });
  const bytes = new TextEncoder().encode('checkpoint v1 bytes');
  await store.put(1, bytes, sha256Digest(bytes), { last_batch_seq: '2' });
  await nc.drain();

  const { orch, log, got } = await claim('claim-some', 3, 424242);
  await waitFor(() => log.find((l) => /claims batch 3, but its newest published checkpoint \(v1\) records batch 2: catching up to batch 2 only/.test(l)), 'the partial catch-up', log);
  await waitFor(() => orch.coordinator.state.ackedSeq === 2, 'batch 2 acknowledged', log);
  assert.equal(orch.coordinator.state.learnerVersion, 1, 'the version is the published one, not the claimed 424242');
  // batch 3 is sent next (1 and 2 may have gone out before the check finished; a learner answers them as duplicates)
  await waitFor(() => got.find((m) => m.train_batch?.batch_seq === 3), 'train batch 3', log);
  assert.notEqual(orch.coordinator.phase, 'done');
});

// A learner killed after publishing a batch's checkpoint and before its TrainResult arrived: the restarted process
// resumes past the batch from the store and answers it 'duplicate' when it is re-sent (its Hello held no progress).
// The audit trail must still show the batch applied once (test/e2e/pipeline.test.ts failed on this, rarely).
test('a restarted learner\'s duplicate answer is recorded as applied as far as its published checkpoint confirms, else as not applied', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dup-restart-'));
  try {
    const nc = await connectNats({ url: nats.url, name: 'dup-test' });
    const store = await CheckpointStore.open(nc, { runId: 'dup-restart' });
    const bytes = new TextEncoder().encode('checkpoint v2 bytes');
    await store.put(2, bytes, sha256Digest(bytes), { last_batch_seq: '2' });
    await nc.drain();
    const trained = (sub: string) => events(join(dir, sub)).filter((e): e is Trained => e.type === 'trained').map((e) => [e.seq, e.applied]);
    const answer = async (runId: string, sub: string) => {
      mkdirSync(join(dir, sub));
      const { orch, log, got, conn } = await claim(runId, undefined, undefined, join(dir, sub, 'events.jsonl'));
      const b1 = await waitFor(() => got.find((m) => m.train_batch?.batch_seq === 1), 'train batch 1', log);
      await conn.send({ train_result: { batch_id: b1.train_batch!.batch_id, batch_seq: 1, applied: false, skipped_reason: 'duplicate', version: 2 } });
      return { orch, log };
    };

    // published v2 records batch 2: batches 1 and 2 acknowledged, both logged as applied
    const confirmed = await answer('dup-restart', 'confirmed');
    await waitFor(() => confirmed.orch.coordinator.state.ackedSeq === 2, 'batches 1 and 2 acknowledged', confirmed.log);
    await waitFor(() => trained('confirmed').length === 2, 'two trained events', confirmed.log);
    assert.deepEqual(trained('confirmed'), [[1, true], [2, true]]);
    assert.equal(confirmed.orch.coordinator.state.learnerVersion, 2);

    // nothing published: the answer is recorded as the learner gave it (batch 1 acknowledged, not applied)
    const unconfirmed = await answer('dup-none', 'unconfirmed');
    await waitFor(() => unconfirmed.orch.coordinator.state.ackedSeq === 1, 'batch 1 acknowledged', unconfirmed.log);
    await waitFor(() => trained('unconfirmed').length === 1, 'one trained event', unconfirmed.log);
    assert.deepEqual(trained('unconfirmed'), [[1, false]]);
    // its version 2 is more than batch 1 can make from v0 and nothing published confirms it: not the run's (review26a F5)
    assert.equal(unconfirmed.orch.coordinator.state.learnerVersion, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
