// Batches acknowledged without a TrainResult at hand (a restarted learner's 'duplicate' answer, a learner's Hello
// catch-up, an acknowledgement stored but not logged before a kill) are recorded in the audit trail as the learner's
// checkpoints record them. Before, each was logged applied, its version counted back from the last one
// (lastVersion - (last - seq)): after a batch skipped as non-finite (the version does not move) or an empty batch
// (the version moves, nothing trained), versions were off by one or more and skipped batches read as applied.
// Real learner (it trains and skips the batches, publishing its checkpoints), real orchestrator, real nats-server.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { z } from 'zod';
import { connectNats, connectToOrchestrator, encodeTensor, RunStateStore, type OrchestratorConnection, type TrainBatch } from '../../lib/transport/index.ts';
import { silentLogger } from '../../lib/worker/index.ts';
import { runLearner } from '../../learner/index.ts';
import { runOrchestrator } from '../../orchestrator/main.ts';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';
import { noisy, parsed, sftBatch, stackImages, tinyConfig, waitFor } from '../roles/helpers.ts';
import { startLearnerRig } from '../roles/learner-harness.ts';
import { events, type Trained } from './helpers.ts';

const RUN = 'inferred-trained';
// batches 1..4 SFT, 5 GRPO; K = 2 checkpoints kept (v0 is pruned by the time the orchestrator reads them)
const input = tinyConfig(RUN, {
  data: { source: { kind: 'procedural', count: 16 } },
  nats: { keepCheckpoints: 2 },
  sft: { steps: 4, batchSize: 2 },
  grpo: { steps: 1, groupSize: 2, samplesPerBatch: 1 },
});
const config = parsed(input);

let nats: TestNatsServer;
const dir = mkdtempSync(join(tmpdir(), 'inferred-trained-'));

/** What the learner did with batches 1..5 (the truth the audit trail must show): [seq, applied, version, reason]. */
const TRUTH = [[1, true, 1], [2, false, 1, 'non_finite'], [3, true, 2], [4, false, 2, 'non_finite'], [5, false, 3, 'empty']];

before(async () => {
  nats = await startNatsServer();
  // the learner handles batches 1..5: 2 and 4 hold a NaN (skipped, the version stays), 5 is a GRPO batch whose every
  // group was dropped (recorded as a version with the same parameters)
  const rig = await startLearnerRig({ runId: RUN, input, natsUrl: nats.url });
  try {
    const nan = (seq: number): TrainBatch => {
      const images = noisy(stackImages([seq, seq + 1, seq + 2, seq + 3]));
      images[7] = NaN;
      return { ...sftBatch(RUN, seq), images: encodeTensor({ dtype: 'float32', shape: [4, 3, 16, 16], data: images }, { allowNonFinite: true }) };
    };
    const empty: TrainBatch = { batch_id: `${RUN}-b5`, batch_seq: 5, kind: 'GRPO', lease_ms: 30_000, sample_ids: [] };
    const got = [];
    for (const b of [sftBatch(RUN, 1), nan(2), sftBatch(RUN, 3), nan(4), empty]) {
      const r = (await rig.train(b)).train_result!;
      got.push([r.batch_seq, r.applied, r.version, ...(r.skipped_reason ? [r.skipped_reason] : [])]);
    }
    assert.deepEqual(got, TRUTH, 'the learner skipped 2 and 4 and recorded 5 as empty');
    await waitFor(async () => JSON.stringify(await rig.store.versions()) === '[1,2,3]', 'v0 pruned (K = 2; an empty batch prunes nothing)');
  } finally {
    await rig.close();
  }
});

after(async () => {
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The stored run state of run `runId`, as an orchestrator killed at that point left it. */
async function storeState(ackedSeq: number, learnerVersion: number, runId = RUN): Promise<void> {
  const nc = await connectNats({ url: nats.url, name: `${runId}-state` });
  const schema = z.object({ ackedSeq: z.number().int().nonnegative(), learnerVersion: z.number().int().nonnegative() });
  const store = await RunStateStore.open(nc, { runId, schema });
  await store.modify(() => ({ ackedSeq, learnerVersion }));
  await nc.close();
}

/** The audit trail of `sub`: [seq, applied, version] and, for a batch not recorded as applied, its reason's first word. */
const trail = (sub: string) => events(join(dir, sub)).filter((e): e is Trained => e.type === 'trained')
  .map((e) => [e.seq, e.applied, e.version, ...(e.applied !== true ? [/^(\w+)/.exec(e.reason ?? '')?.[1]] : [])]);

async function orchestrator(sub: string, log: string[], runId = RUN) {
  mkdirSync(join(dir, sub), { recursive: true });
  const eventsFile = join(dir, sub, 'events.jsonl');
  return runOrchestrator({ config: runId === RUN ? config : parsed({ ...input, run: { id: runId, seed: 7 } }), listen: '127.0.0.1:0', natsUrl: nats.url, metricsPort: 0, eventsFile, log: (l) => log.push(l) });
}

test('a restarted learner answers batch 1 "duplicate": batches 1..5 are recorded as its checkpoints record them', { timeout: 60_000 }, async () => {
  await storeState(0, 0);
  const log: string[] = [];
  const orch = await orchestrator('duplicate', log);
  const learner = await runLearner({ orchestrator: orch.address, nats: nats.url, workerId: 'learner-2', logger: silentLogger, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
  try {
    await orch.done;
    assert.deepEqual(orch.coordinator.state, { ackedSeq: 5, learnerVersion: 3 });
  } finally {
    await learner.stop({ graceMs: 1000 });
    await orch.stop();
  }
  assert.deepEqual(trail('duplicate'), TRUTH, log.join('\n'));
});

test('a learner\'s Hello says it holds batch 5: the catch-up after batch 1 records 2..5 as the checkpoints record them', { timeout: 60_000 }, async () => {
  await storeState(1, 1);
  const log: string[] = [];
  const orch = await orchestrator('hello', log);
  let conn: OrchestratorConnection | undefined;
  try {
    conn = await connectToOrchestrator({
      address: orch.address, role: 'LEARNER', workerId: 'learner-3',
      capabilities: { device: 'cpu', max_batch: 1, max_in_flight: 1 },
      hello: { last_batch_seq: 5, policy_version: 3 },
    });
    void (async () => {
      for await (const _ of conn.messages); // batches sent before the catch-up are not answered
    })().catch(() => undefined);
    await orch.done;
  } finally {
    await conn?.close().catch(() => undefined);
    await orch.stop();
  }
  // batch 1 is logged at start (stored, not in this fresh log), 2..5 by the catch-up
  assert.deepEqual(trail('hello'), TRUTH, log.join('\n'));
  assert.ok(log.some((l) => /learner says it holds batch 5, newer than the stored 1/.test(l)), log.join('\n'));
});

test('acknowledged batches the event log missed (a kill between storing and logging) are logged as the checkpoints record them', { timeout: 60_000 }, async () => {
  // batches 1..4 acknowledged (version 2), the log holds only batch 1
  await storeState(4, 2);
  mkdirSync(join(dir, 'unlogged'));
  appendFileSync(join(dir, 'unlogged', 'events.jsonl'), `${JSON.stringify({ t: 0, type: 'trained', seq: 1, kind: 'sft', applied: true, version: 1, samples: [], compute_ms: 1 })}\n`);
  const log: string[] = [];
  await (await orchestrator('unlogged', log)).stop();
  assert.deepEqual(trail('unlogged'), TRUTH.slice(0, 4), log.join('\n'));
  const reasons = events(join(dir, 'unlogged')).flatMap((e) => (e.type === 'trained' ? [e.reason ?? ''] : []));
  assert.match(reasons[1]!, /^non_finite: acknowledged before the orchestrator restarted, not logged \(checkpoint v1 records batch 1\)$/);
  assert.match(reasons[2]!, /^acknowledged before the orchestrator restarted, not logged \(checkpoints v1..v2 record batches 1..3, step 1..2\)$/);
});

test('where no checkpoint records them (none published), the outcomes are unknown: applied and version null, never a guess', { timeout: 60_000 }, async () => {
  await storeState(2, 1, `${RUN}-none`);
  const log: string[] = [];
  await (await orchestrator('none', log, `${RUN}-none`)).stop();
  assert.deepEqual(trail('none'), [[1, null, null, 'unknown'], [2, null, null, 'unknown']], log.join('\n'));
  const reason = events(join(dir, 'none')).flatMap((e) => (e.type === 'trained' ? [e.reason ?? ''] : []))[0]!;
  assert.match(reason, /^unknown: acknowledged before the orchestrator restarted, not logged \(checkpoint v1 is not in the store; 1 version\(s\) over 2 batches\)$/);
});

test('no checkpoint records them, but the version moved once per batch since the log\'s last applied batch: versions known', { timeout: 60_000 }, async () => {
  // batches 2 and 3 (SFT: never empty) took the version from the logged batch 1's v1 to the stored v3
  await storeState(3, 3, `${RUN}-count`);
  mkdirSync(join(dir, 'count'));
  appendFileSync(join(dir, 'count', 'events.jsonl'), `${JSON.stringify({ t: 0, type: 'trained', seq: 1, kind: 'sft', applied: true, version: 1, samples: [], compute_ms: 1 })}\n`);
  const log: string[] = [];
  await (await orchestrator('count', log, `${RUN}-count`)).stop();
  assert.deepEqual(trail('count'), [[1, true, 1], [2, true, 2], [3, true, 3]], log.join('\n'));
});
