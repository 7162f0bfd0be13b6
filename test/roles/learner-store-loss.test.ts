// The learner when the NATS store is lost (nats-server restarted on an empty store directory, with a real
// server and the learner over real gRPC): after the reconnection it re-creates its buckets and puts back the KL
// reference and its newest checkpoint with the AdamW state; a batch arriving right after a second loss is
// published all the same; a restarted learner resumes from what it put back. And a GRPO batch with no samples
// (every group dropped) is recorded, not refused: version + 1 with the weights unchanged.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/nats.ts';
import { spawnNatsServer, type NatsServerProcess, type TrainBatch } from '../../lib/transport/index.ts';
import type { TensorMap } from '../../lib/checkpoint/index.ts';
import { LearnerStateStore } from '../../lib/worker/index.ts';
import { parsed, sftBatch as sftTestBatch, tinyConfig, waitFor } from './helpers.ts';
import { grpoBatch as grpoTestBatch, rollOut, startLearnerRig, type LearnerRig } from './learner-harness.ts';

const RUN = 'learn-loss';
const input = tinyConfig(RUN, { nats: { keepCheckpoints: 2 }, sft: { lr: 0.003 }, optim: { lr: 0.001 }, grpo: { groupSize: 2, beta: 0.5 } });
const config = parsed(input);

let dir: string;
let port: number;
let server: NatsServerProcess;
let rig: LearnerRig;
const learnerLog: string[] = [];

/** kill -9 of nats-server, its store directory removed, started again on the same port. */
async function loseStore(): Promise<void> {
  await server.stop({ killAfterMs: 0 });
  rmSync(join(dir, 'nats'), { recursive: true, force: true });
  server = await spawnNatsServer({ port, storeDir: join(dir, 'nats') });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'learner-loss-'));
  port = await freePort();
  server = await spawnNatsServer({ port, storeDir: join(dir, 'nats') });
  // the learner's log lines, shown when a wait times out (they are what says why a store was not put back)
  const keep = (level: string) => (msg: string) => void learnerLog.push(`${level} ${msg}`);
  rig = await startLearnerRig({ runId: RUN, input, natsUrl: server.url, learner: { publishRetryMs: 200, logger: { info: keep('info'), warn: keep('warn'), error: keep('error') } } });
});
after(async () => {
  await rig?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const sftBatch = (seq: number): TrainBatch => sftTestBatch(RUN, seq);
/** GRPO batch `seq`: 2 samples x G=2 rolled out with `params` (behaviour version `version`). */
const grpoBatch = async (seq: number, params: TensorMap, version: number): Promise<TrainBatch> => grpoTestBatch(RUN, seq, await rollOut(config, params, seq), version);
const train = (b: TrainBatch) => rig.train(b);
const checkpointAt = (version: number, digest?: string) => rig.checkpointAt(version, digest);
const bytesOf = (p: TensorMap) => Buffer.concat([...p.keys()].sort().map((k) => Buffer.from(p.get(k)!.data.buffer, p.get(k)!.data.byteOffset, p.get(k)!.data.byteLength)));

test('a lost store is put back by the learner: KL reference, newest checkpoint, AdamW state; an empty GRPO batch is recorded, not refused', async () => {
  assert.equal((await train(sftBatch(1))).train_result!.version, 1);
  const r2 = (await train(await grpoBatch(2, (await checkpointAt(1)).params, 1))).train_result!;
  assert.deepEqual([r2.applied, r2.version], [true, 2]);
  const refDigest = (await checkpointAt(2)).meta.extra.ref_digest;
  assert.equal((await checkpointAt(2)).meta.extra.ref_version, '1');
  const v2 = r2.checkpoint!.digest;

  await loseStore();
  // after its reconnection the learner finds v2 gone and puts back v1 (the KL reference) and v2
  await waitFor(async () => (await rig.store.latest().catch(() => null))?.version === 2, 'v2 announced again', 30_000)
    .catch((e: Error) => { throw new Error(`${e.message}; the learner's last log lines: ${learnerLog.slice(-20).join(' | ')}`); });
  assert.equal((await rig.store.latest())!.digest, v2, 'the same checkpoint, byte for byte');
  await checkpointAt(1, refDigest);
  const ck2 = await checkpointAt(2, v2);
  const moments = await (await LearnerStateStore.open(rig.nc, RUN)).get(2, v2.slice(7), ck2.params);
  assert.equal(moments?.state.step, 1, 'the AdamW state of v2 is back');

  // every group of batch 3 dropped: the orchestrator sends it without samples; recorded as v3, weights unchanged
  const empty: TrainBatch = { batch_id: `${RUN}-b3`, batch_seq: 3, kind: 'GRPO', lease_ms: 30_000, sample_ids: [] };
  const r3 = await train(empty);
  assert.ok(r3.train_result, `refused: ${JSON.stringify(r3.task_error)}`);
  assert.deepEqual([r3.train_result.applied, r3.train_result.skipped_reason, r3.train_result.version], [false, 'empty', 3]);
  const ck3 = await checkpointAt(3, r3.train_result.checkpoint!.digest);
  assert.deepEqual([ck3.meta.extra.last_batch_seq, ck3.meta.step], ['3', 2]);
  assert.ok(bytesOf(ck3.params).equals(bytesOf(ck2.params)), 'an empty batch changes no weights');
  assert.equal((await train(empty)).train_result!.skipped_reason, 'duplicate', 'its seq is handled once');

  // lost again, and a batch arrives at once: it is published whichever of the reconnection check and its own
  // failed write finds the loss first
  await loseStore();
  const r4 = (await train(await grpoBatch(4, ck3.params, 3))).train_result!;
  assert.deepEqual([r4.applied, r4.version], [true, 4]);
  await waitFor(async () => (await rig.store.latest().catch(() => null))?.version === 4, 'v4 announced', 30_000);
  await checkpointAt(1, refDigest);

  // a learner restarted now resumes from what was put back (v4 and its reference v1)
  await rig.restartLearner();
  const now = rig.learner.state()!;
  assert.deepEqual([now.version, now.lastBatchSeq, now.refVersion, now.refDigest], [4, 4, 1, refDigest]);
});
