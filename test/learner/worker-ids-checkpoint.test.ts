// Round 33 (quarantine33): the learner records the orchestrator's quarantine and worker-id bindings, as the newest
// TrainBatch carried them (worker_ids), in every checkpoint it publishes (worker_ids, in the announcement's
// meta), carries them across a batch without them (an older orchestrator) and across its own restart, and cuts an
// oversized record to its bounds, saying so; after a store loss it puts back its newest checkpoint byte for byte, with
// the record that checkpoint was published with. The learner over real gRPC (a fake orchestrator) and a real
// nats-server (test/roles/learner-harness.ts), restarted on an empty store directory for the loss.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/nats.ts';
import { waitFor } from '../helpers/wait.ts';
import { parseWorkerIds, spawnNatsServer, WORKER_IDS_META_KEY, WORKER_ID_RECORD_QUARANTINED_MAX, type NatsServerProcess, type TrainBatch } from '../../lib/transport/index.ts';
import { parsed, sftBatch, tinyConfig } from '../roles/helpers.ts';
import { grpoBatch, rollOut, startLearnerRig, type LearnerRig } from '../roles/learner-harness.ts';

const RUN = 'worker-ids-ckpt';
const INPUT = tinyConfig(RUN, { sft: { steps: 8 }, grpo: { groupSize: 2, beta: 0.5 } });
let dir: string;
let port: number;
let server: NatsServerProcess;
let rig: LearnerRig;
const warnings: string[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'worker-ids-ckpt-'));
  port = await freePort();
  server = await spawnNatsServer({ port, storeDir: join(dir, 'nats') });
  const logger = { info() {}, warn: (m: string) => void warnings.push(m), error: (m: string) => void warnings.push(m) };
  rig = await startLearnerRig({ runId: RUN, input: INPUT, natsUrl: server.url, learner: { publishRetryMs: 200, logger } });
});
after(async () => {
  await rig?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const CRED = 'token:0123456789abcdef';
const withIds = (b: TrainBatch, quarantined: string[], bound: Array<{ key: string; credential: string }>): TrainBatch => ({ ...b, worker_ids: { quarantined, bound } });

/** The newest announcement's meta worker_ids, read back as the orchestrator reads it. */
async function newestRecord() {
  const ann = await rig.store.latest();
  assert.ok(ann);
  const text = ann.meta[WORKER_IDS_META_KEY];
  if (text === undefined) return undefined;
  const ids = parseWorkerIds(text, 'newest');
  assert.ok(!(ids instanceof Error), String(ids));
  return ids;
}

test('every checkpoint records the newest TrainBatch\'s worker_ids; a batch without them and a restart carry them', async () => {
  assert.equal((await rig.train(sftBatch(RUN, 1))).train_result?.applied, true);
  assert.equal(await newestRecord(), undefined, 'no batch carried any: none recorded');
  assert.equal((await rig.train(withIds(sftBatch(RUN, 2), ['forger'], [{ key: 'rollout/r1', credential: CRED }]))).train_result?.applied, true);
  assert.deepEqual(await newestRecord(), { quarantined: ['forger'], boundIds: { 'rollout/r1': CRED } });
  // announcement meta only: the checkpoint's bytes stay a function of the seed and the batches (parity, determinism)
  assert.equal((await rig.checkpointAt(2)).meta.extra[WORKER_IDS_META_KEY], undefined, 'no record in the checkpoint bytes');
  // an older orchestrator's batch: the record stays
  assert.equal((await rig.train(sftBatch(RUN, 3))).train_result?.applied, true);
  assert.deepEqual(await newestRecord(), { quarantined: ['forger'], boundIds: { 'rollout/r1': CRED } });
  // a restarted learner carries it from the checkpoint it resumes from
  await rig.restartLearner();
  assert.equal((await rig.train(sftBatch(RUN, 4))).train_result?.applied, true);
  assert.equal((await rig.store.latest())?.version, 4);
  assert.deepEqual(await newestRecord(), { quarantined: ['forger'], boundIds: { 'rollout/r1': CRED } });
  // a lift (the orchestrator's list without it) is recorded as such: an empty record, not an absent one
  assert.equal((await rig.train(withIds(sftBatch(RUN, 5), [], []))).train_result?.applied, true);
  assert.deepEqual(await newestRecord(), { quarantined: [], boundIds: {} });
});

test('a record over the bound is cut to it, said once; ids off the pattern are left out', async () => {
  const many = Array.from({ length: WORKER_ID_RECORD_QUARANTINED_MAX + 44 }, (_, i) => `w${String(i).padStart(4, '0')}`);
  assert.equal((await rig.train(withIds(sftBatch(RUN, 6), [...many, 'bad id'], [{ key: 'rollout/r2', credential: 'not-a-credential' }]))).train_result?.applied, true);
  const got = await newestRecord();
  assert.deepEqual(got?.quarantined, many.slice(0, WORKER_ID_RECORD_QUARANTINED_MAX));
  assert.deepEqual(got?.boundIds, {});
  const said = warnings.filter((w) => w.includes(`announcement meta ${WORKER_IDS_META_KEY}`) && w.includes('left out'));
  assert.equal(said.length, 1, warnings.join('\n'));
  assert.match(said[0]!, /carries 301 quarantined worker id\(s\) and 1 binding\(s\): 46 left out/);
});

/** kill -9 of nats-server, its store directory removed, started again on the same port. */
async function loseStore(): Promise<void> {
  await server.stop({ killAfterMs: 0 });
  rmSync(join(dir, 'nats'), { recursive: true, force: true });
  server = await spawnNatsServer({ port, storeDir: join(dir, 'nats') });
}

test('a store lost: the newest checkpoint is put back byte for byte, with the record it was published with', async () => {
  assert.equal((await rig.train(withIds(sftBatch(RUN, 7), ['forger'], []))).train_result?.applied, true);
  const v7 = (await rig.store.latest())!;
  assert.equal(v7.version, 7);
  // batch 8 brings another record and fails before publishing (a gap-free seq, but no images: bad_input)
  const broken: TrainBatch = { batch_id: `${RUN}-b8`, batch_seq: 8, kind: 'SFT', lease_ms: 30_000, worker_ids: { quarantined: ['other'], bound: [] } };
  assert.ok((await rig.train(broken)).task_error, 'batch 8 refused');
  await loseStore();
  await waitFor(async () => ((await rig.store.latest().catch(() => null))?.version === 7 ? true : undefined), 'v7 put back', warnings, 30_000);
  const back = (await rig.store.latest())!;
  assert.equal(back.digest, v7.digest, 'the same checkpoint, byte for byte');
  assert.deepEqual(await newestRecord(), { quarantined: ['forger'], boundIds: {} });
});

test('a store lost in the GRPO phase: the KL reference is put back byte for byte (its bytes carry no record)', async () => {
  // v8 (the last SFT batch) becomes the KL reference at the first GRPO batch
  assert.equal((await rig.train(withIds(sftBatch(RUN, 8), ['ref-era'], []))).train_result?.applied, true);
  const v8 = (await rig.store.latest())!;
  const r9 = (await rig.train(withIds(grpoBatch(RUN, 9, await rollOut(parsed(INPUT), (await rig.checkpointAt(8)).params, 9), 8), ['grpo-era'], []))).train_result;
  assert.equal(r9?.applied, true);
  assert.equal((await rig.checkpointAt(9)).meta.extra.ref_version, '8');
  await loseStore();
  await waitFor(async () => ((await rig.store.latest().catch(() => null))?.version === 9 ? true : undefined), 'v9 put back', warnings, 30_000);
  // the reference is back under its digest; the record is announcement meta, never in its bytes
  await rig.checkpointAt(8, v8.digest);
  assert.equal((await rig.checkpointAt(8)).meta.extra[WORKER_IDS_META_KEY], undefined);
  assert.deepEqual(await newestRecord(), { quarantined: ['grpo-era'], boundIds: {} });
  assert.ok(!warnings.some((w) => w.includes('cannot put back the KL reference')), warnings.join('\n'));
});
