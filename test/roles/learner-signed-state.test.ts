// The learner of a signed run (RECOVERY_GRPO_CHECKPOINT_KEY_FILE) binds its optimizer state to the checkpoint it
// signs: each announcement records the state's sha256 (meta.optimizer_digest) under the learner's signature, and a
// restarted learner uses only a state with that digest. Any other (written by someone else with access to the
// `learner-state` bucket, or announced by a learner before round 19) is refused with an error naming the object,
// and the learner resumes the signed checkpoint with a fresh AdamW: the run goes on. Unsigned runs are unchanged
// (learner.test.ts resumes their moments).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';
import { generateSigningKeys, loadVerifyKey, verifyCheckpoint } from '../../lib/checkpoint/sign.ts';
import { sha256Digest } from '../../lib/transport/index.ts';
import { LearnerStateStore, publishCheckpoint, STATE_DIGEST_KEY, type Logger } from '../../lib/worker/index.ts';
import { sftBatch, tinyConfig } from './helpers.ts';
import { startLearnerRig, type LearnerRig } from './learner-harness.ts';

const RUN = 'learn-signed';
const input = tinyConfig(RUN, { sft: { lr: 0.003 } });
const dir = mkdtempSync(join(tmpdir(), 'learner-signed-'));
const keys = generateSigningKeys();
writeFileSync(join(dir, 'learner.key'), keys.privateKeyPem);
// every process of this test signs and verifies as the learner does (the harness's reader store too)
process.env.RECOVERY_GRPO_CHECKPOINT_KEY_FILE = join(dir, 'learner.key');

const errors: string[] = [];
const logger: Logger = { info() {}, warn() {}, error: (m) => void errors.push(m) };

let nats: TestNatsServer;
let rig: LearnerRig;
before(async () => {
  nats = await startNatsServer();
  rig = await startLearnerRig({ runId: RUN, input, natsUrl: nats.url, learner: { logger } });
});
after(async () => {
  await rig?.close();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const trainSft = async (seq: number) => {
  const r = await rig.train(sftBatch(RUN, seq));
  assert.ok(r.train_result?.applied, JSON.stringify(r.task_error));
  return r.train_result!;
};
const optimizerStep = () => rig.learner.state()!.optimizerStep;
/** The restarted learner's count of refused states for `reason` (0 where it has no such series). */
const refusals = async (reason: string) => {
  const text = await (await fetch(`${rig.learner.metricsUrl}/metrics`)).text();
  const m = new RegExp(`^recovery_grpo_optimizer_state_refused_total\\{reason="${reason}",run_id="${RUN}",role="learner"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
};

test("the signed announcement records the optimizer state's digest; a restart resumes that state", { timeout: 120_000 }, async () => {
  await trainSft(1);
  const ann = (await rig.store.latest())!;
  assert.equal(ann.version, 1);
  const bytes = await (await rig.nc.jetstream().views.os('learner-state')).getBlob(`${RUN}/optim-v0000000001`);
  assert.equal(ann.meta[STATE_DIGEST_KEY], sha256Digest(bytes!));
  assert.ok(verifyCheckpoint(loadVerifyKey(keys.publicKeyPem), RUN, 1, ann.digest, ann.meta, ann.meta['signature']), 'the digest is under the signature');
  await rig.restartLearner();
  assert.equal(optimizerStep(), 1, 'the verified moments are resumed');
  assert.deepEqual(errors, []);
  assert.equal(await refusals('mismatch'), 0);
});

test('a state that is not the one the learner signed is refused, naming it; the learner resumes with a fresh AdamW and the run goes on', { timeout: 120_000 }, async () => {
  // another writer replaces the moments of v1: well-formed, for the right checkpoint, with a step count of its own
  const saved = await rig.savedAt(1);
  const forged = { ...saved, state: { ...saved.state, step: 777 } };
  await (await LearnerStateStore.open(rig.nc, RUN)).put(forged);
  await rig.restartLearner();
  assert.equal(rig.learner.state()!.version, 1, 'resumed the signed checkpoint');
  assert.equal(optimizerStep(), 0, 'not the forged step count 777');
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(errors[0]!, new RegExp(`^learner-state/${RUN}/optim-v0000000001: its sha256 is sha256:[0-9a-f]{64}, but the learner's announcement of checkpoint v1 records optimizer_digest sha256:[0-9a-f]{64}: not the state the learner stored\\. The optimizer state is not used: resuming checkpoint v1 with a fresh AdamW`));
  assert.equal(await refusals('mismatch'), 1, 'the refusal is counted');
  // training goes on, and what the learner stores next is its own again
  assert.equal((await trainSft(2)).version, 2);
  await rig.restartLearner();
  assert.equal(optimizerStep(), 1, 'the fresh AdamW took one step, stored and verified');
  assert.equal(errors.length, 1);
});

test('a signed announcement that records no state digest (a learner before round 19) leaves its state unused', { timeout: 120_000 }, async () => {
  // v3 as a learner before this change published it: its moments stored, its signed announcement without their digest
  const v2 = await rig.checkpointAt(2);
  const v3 = await publishCheckpoint(rig.store, { meta: { ...v2.meta, version: 3 }, params: v2.params });
  assert.equal(v3.meta[STATE_DIGEST_KEY], undefined);
  await (await LearnerStateStore.open(rig.nc, RUN)).put({ ...(await rig.savedAt(2)), version: 3, checkpointDigest: v3.digest });
  await rig.restartLearner();
  assert.equal(optimizerStep(), 0);
  assert.match(errors.at(-1)!, /^learner-state: the signed announcement of checkpoint v3 records no optimizer_digest \(published by a learner before round 19\), so its optimizer state cannot be verified\. The optimizer state is not used/);
  assert.equal(await refusals('missing'), 1, 'the refusal is counted');
});

test('a signed announcement whose state digest is malformed leaves its state unused, and is counted as such', { timeout: 120_000 }, async () => {
  const v3 = await rig.checkpointAt(3);
  const v4 = await publishCheckpoint(rig.store, { meta: { ...v3.meta, version: 4 }, params: v3.params }, { [STATE_DIGEST_KEY]: 'sha256:not-hex' });
  await (await LearnerStateStore.open(rig.nc, RUN)).put({ ...(await rig.savedAt(2)), version: 4, checkpointDigest: v4.digest });
  await rig.restartLearner();
  assert.equal(rig.learner.state()!.version, 4);
  assert.equal(optimizerStep(), 0);
  assert.match(errors.at(-1)!, /^learner-state: the signed announcement of checkpoint v4 records no optimizer_digest \(malformed: "sha256:not-hex"\)/);
  assert.equal(await refusals('malformed'), 1);
  assert.equal(await refusals('missing'), 0, 'a new process counts from zero');
});
