// lib/worker/learner-state.ts: the learner's AdamW moments in the one `learner-state` bucket shared by all runs
// (objects `<run>/optim-v...`): each run reads and prunes only its own, and a run whose moments are still in its
// pre-round-6 bucket `learner-<run>` resumes with them; in a signed run only the bytes its announcement records are read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { natsForFile } from '../helpers/nats.ts';
import { connectNats } from '../../lib/transport/nats.ts';
import { LearnerStateStore, UnverifiedStateError } from '../../lib/worker/learner-state.ts';
import { encodeOptimizerState } from '../../lib/checkpoint/optimizer-state.ts';
import type { TensorMap } from '../../lib/checkpoint/tensors.ts';
import { headers } from 'nats';
import { objectDigest, objectDigestMatches, parseObjectDigest } from '../../lib/transport/object-digest.ts';

const shared = natsForFile('learner-state-test');

const params: TensorMap = new Map([['w', { shape: [2], data: new Float32Array(2) }]]);
const digest = (v: number) => String(v).repeat(64).slice(0, 64);
const file = (version: number, step: number) => ({
  version,
  checkpointDigest: digest(version),
  state: { step, m: new Map([['w', { shape: [2], data: new Float32Array([step, 1]) }]]), v: new Map([['w', { shape: [2], data: new Float32Array([step, 2]) }]]) },
});

test('two runs share the bucket: each reads and prunes only its own moments', async () => {
  const a = await LearnerStateStore.open(shared.nc, 'run-a');
  const b = await LearnerStateStore.open(shared.nc, 'run-b');
  assert.equal(a.bucket, 'learner-state');
  for (const v of [1, 2, 3]) await a.put(file(v, 10 + v));
  await b.put(file(1, 99));
  await a.prune(3);
  assert.equal(await a.get(1, digest(1), params), null, 'run-a v1 pruned');
  assert.equal((await a.get(3, digest(3), params))?.state.step, 13);
  assert.equal((await b.get(1, digest(1), params))?.state.step, 99, 'run-b v1 kept when run-a prunes');
  assert.equal(await b.get(2, digest(2), params), null);
  const names = (await (await shared.nc.jetstream().views.os('learner-state')).list()).filter((i) => !i.deleted).map((i) => i.name).sort();
  assert.deepEqual(names, ['run-a/optim-v0000000002', 'run-a/optim-v0000000003', 'run-b/optim-v0000000001']);
});

test("a run's moments in its old learner-<run> bucket are read on resume", async () => {
  const old = await shared.nc.jetstream().views.os('learner-run-old');
  await old.putBlob({ name: 'optim-v0000000007' }, encodeOptimizerState(file(7, 70)).bytes);
  const s = await LearnerStateStore.open(shared.nc, 'run-old');
  assert.equal((await s.get(7, digest(7), params))?.state.step, 70);
  assert.equal(await s.get(8, digest(8), params), null);
  // a run that never had the old bucket does not get one made
  assert.equal(await (await LearnerStateStore.open(shared.nc, 'run-new')).get(1, digest(1), params), null);
  const jsm = await shared.nc.jetstreamManager();
  await assert.rejects(jsm.streams.info('OBJ_learner-run-new'), /not found/i);
});

/** Chunk messages in the bucket's stream, all runs together. */
async function chunkMessages(): Promise<number> {
  const jsm = await shared.nc.jetstreamManager();
  const subjects = (await jsm.streams.info('OBJ_learner-state', { subjects_filter: '$O.learner-state.C.>' })).state.subjects ?? {};
  return Object.values(subjects).reduce((a, b) => a + b, 0);
}

test("writing a version looks up an earlier attempt only where one can exist: a predecessor's leftover and a retry are still replaced", async () => {
  // a learner killed after storing the moments of v5 without announcing it
  await (await LearnerStateStore.open(shared.nc, 'run-c')).put(file(5, 1));
  const before = await chunkMessages();
  const s = await LearnerStateStore.open(shared.nc, 'run-c');
  await s.put(file(3, 3)); // before the first listing: looked up
  await s.prune(3); // the first prune lists the bucket: v3 and the leftover v5
  // the lookups (an object's info read: a message get on the bucket's stream), seen by a second connection
  const watcher = await connectNats({ url: shared.nats.url, name: 'learner-state-lookups' });
  const lookups = watcher.subscribe('$JS.API.STREAM.MSG.GET.OBJ_learner-state');
  let seen = 0;
  void (async () => {
    for await (const _ of lookups) seen++;
  })();
  await watcher.flush();
  const looked = async (put: () => Promise<unknown>) => {
    const from = seen;
    await put();
    await watcher.flush();
    return seen - from;
  };
  assert.equal(await looked(() => s.put(file(4, 4))), 0, 'listed as absent: not looked up');
  // the re-applied batch: the leftover is listed, looked up, and its chunks purged
  assert.equal(await looked(() => s.put(file(5, 5))), 1);
  await watcher.close();
  await s.put(file(5, 55)); // a retry at the same version: the first attempt's chunks are purged too
  await s.put(file(6, 6));
  await s.prune(6); // deletes v3 and v4
  assert.equal((await s.get(5, digest(5), params))?.state.step, 55);
  assert.equal((await s.get(6, digest(6), params))?.state.step, 6);
  assert.equal(await s.get(4, digest(4), params), null);
  const names = (await (await shared.nc.jetstream().views.os('learner-state')).list()).filter((i) => !i.deleted && i.name.startsWith('run-c/')).map((i) => i.name).sort();
  assert.deepEqual(names, ['run-c/optim-v0000000005', 'run-c/optim-v0000000006']);
  // one chunk per object: v5 and v6 are left where the leftover v5 was, and no earlier attempt's chunks
  assert.equal(await chunkMessages(), before + 1);
});

test("with expectDigest (a signed run's announcement), only the bytes of that sha256 are read; others are refused naming the object", async () => {
  const s = await LearnerStateStore.open(shared.nc, 'run-d');
  const genuine = encodeOptimizerState(file(1, 1));
  await s.putEncoded(1, genuine);
  assert.equal((await s.get(1, digest(1), params, { expectDigest: `sha256:${genuine.digest}` }))?.state.step, 1);
  await s.put(file(1, 777)); // another writer's moments for the same checkpoint
  await assert.rejects(
    s.get(1, digest(1), params, { expectDigest: `sha256:${genuine.digest}` }),
    (e: Error) => e instanceof UnverifiedStateError && e.message === `learner-state/run-d/optim-v0000000001: its sha256 is sha256:${encodeOptimizerState(file(1, 777)).digest}, but the learner's announcement of checkpoint v1 records optimizer_digest sha256:${genuine.digest}: not the state the learner stored`,
  );
  assert.equal((await s.get(1, digest(1), params))?.state.step, 777, 'without expectDigest (an unsigned run) nothing is compared, as before');
});

// Round 24 (trust24): the object's info record names its SHA-256 in any form nats.js reads (object-digest.ts), compared
// by the bytes: a record in hex or standard base64 (another client's) is read, one naming other bytes refused.
test('the moments are read whatever form of their SHA-256 the info record holds, and refused when it names other bytes', async () => {
  const s = await LearnerStateStore.open(shared.nc, 'run-e');
  await s.put(file(1, 5));
  const name = 'run-e/optim-v0000000001';
  const subject = `$O.learner-state.M.${Buffer.from(name).toString('base64url')}${'='.repeat((3 - (Buffer.byteLength(name) % 3)) % 3)}`;
  const jsm = await shared.nc.jetstreamManager();
  const info = (await jsm.streams.getMessage('OBJ_learner-state', { last_by_subj: subject })).json<Record<string, unknown>>();
  const sha = parseObjectDigest(info['digest'])!;
  assert.equal(info['digest'], objectDigest(sha), 'the learner writes the form nats.js writes');
  const rewrite = async (digest: string) => {
    const h = headers();
    h.set('Nats-Rollup', 'sub');
    await shared.nc.jetstream().publish(subject, new TextEncoder().encode(JSON.stringify({ ...info, digest })), { headers: h });
  };
  for (const form of [`SHA-256=${sha.toString('hex')}`, `SHA-256=${sha.toString('hex').toUpperCase()}`, `SHA-256=${sha.toString('base64')}`, `SHA-256=${sha.toString('base64url')}`]) {
    await rewrite(form);
    assert.equal((await s.get(1, digest(1), params))?.state.step, 5, `read with ${form}`);
  }
  const other = Buffer.from(sha);
  other[0]! ^= 1;
  for (const bad of [objectDigest(other), `SHA-256=${other.toString('hex')}`, `SHA-512=${sha.toString('base64url')}=`, 'SHA-256=not a digest']) {
    await rewrite(bad);
    await assert.rejects(s.get(1, digest(1), params), /learner-state\/run-e\/optim-v0000000001: read \d+ bytes with SHA-256=.*, but its info records \d+ bytes with/, `read with ${bad}`);
  }
});

test('object digests: the forms nats.js reads name the same 32 bytes; anything else names none', () => {
  const sha = Buffer.from(Array.from({ length: 32 }, (_, i) => i * 7 + 3));
  for (const form of [objectDigest(sha), `SHA-256=${sha.toString('base64url')}`, `SHA-256=${sha.toString('base64')}`, `SHA-256=${sha.toString('hex')}`, `SHA-256=${sha.toString('hex').toUpperCase()}`]) {
    assert.ok(objectDigestMatches(form, sha), form);
    assert.deepEqual(parseObjectDigest(form), sha, form);
  }
  const mixedCase = `SHA-256=${sha.toString('hex').slice(0, 32)}${sha.toString('hex').slice(32).toUpperCase()}`;
  for (const bad of [undefined, 42, '', 'SHA-256=', `sha-256=${sha.toString('hex')}`, `SHA-512=${sha.toString('hex')}`, `SHA-256=${sha.toString('hex').slice(2)}`, `SHA-256=${sha.subarray(1).toString('base64url')}`, `SHA-256=${sha.toString('base64url')}==`]) {
    assert.equal(parseObjectDigest(bad), null, String(bad));
    assert.equal(objectDigestMatches(bad, sha), false, String(bad));
  }
  // a mixed-case hex string is not hex to nats.js either; as base64 it is 64 characters, no SHA-256
  assert.equal(parseObjectDigest(mixedCase), null);
});
