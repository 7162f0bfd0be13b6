// Checkpoint announcement signatures (lib/checkpoint/sign.ts): ed25519 over (run id, version, digest, meta). A valid
// signature verifies; changing any field, the key or the signature's bytes fails; keys of another kind are
// refused. Then against a real nats-server: a CheckpointStore that verifies accepts only announcements the
// learner's key signed, so a writer with NATS access but not the key cannot publish weights.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKeys, loadSigningKey, loadVerifyKey, signCheckpoint, verifyCheckpoint } from '../../lib/checkpoint/sign.ts';
import { JSONCodec } from 'nats';
import { CheckpointStore, checkpointKeysFromEnv, connectNats, sha256Digest } from '../../lib/transport/index.ts';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';

const DIGEST = `sha256:${'0f'.repeat(32)}`;

test('a signature verifies for exactly its run id, version, digest, meta and key', () => {
  const keys = generateSigningKeys();
  const priv = loadSigningKey(keys.privateKeyPem);
  const pub = loadVerifyKey(keys.publicKeyPem);
  const meta = { last_batch_seq: 7, step: 7, config_hash: 'abc' };
  const sig = signCheckpoint(priv, 'run-a', 7, DIGEST, meta);
  assert.equal(verifyCheckpoint(pub, 'run-a', 7, DIGEST, meta, sig), true);
  // as a reader sees it: keys in another order, the signature itself inside the meta
  assert.equal(verifyCheckpoint(pub, 'run-a', 7, DIGEST, { config_hash: 'abc', step: 7, last_batch_seq: 7, signature: sig }, sig), true, 'the meta as it arrives');
  assert.equal(verifyCheckpoint(pub, 'run-b', 7, DIGEST, meta, sig), false, 'another run');
  assert.equal(verifyCheckpoint(pub, 'run-a', 8, DIGEST, meta, sig), false, 'another version');
  assert.equal(verifyCheckpoint(pub, 'run-a', 7, `sha256:${'1f'.repeat(32)}`, meta, sig), false, 'another digest');
  assert.equal(verifyCheckpoint(pub, 'run-a', 7, DIGEST, { ...meta, last_batch_seq: 99 }, sig), false, 'another last_batch_seq');
  assert.equal(verifyCheckpoint(pub, 'run-a', 7, DIGEST, { ...meta, extra: 1 }, sig), false, 'a field added');
  const other = loadVerifyKey(generateSigningKeys().publicKeyPem);
  assert.equal(verifyCheckpoint(other, 'run-a', 7, DIGEST, meta, sig), false, 'another key');
  const flipped = Buffer.from(sig, 'base64');
  flipped[0]! ^= 1;
  assert.equal(verifyCheckpoint(pub, 'run-a', 7, DIGEST, meta, flipped.toString('base64')), false, 'a flipped bit');
  for (const bad of [undefined, 42, '', 'not base64!', Buffer.alloc(10).toString('base64')]) assert.equal(verifyCheckpoint(pub, 'run-a', 7, DIGEST, meta, bad), false, String(bad));
});

test('keys that are not ed25519, or not keys, are refused naming the key', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
  assert.throws(() => loadSigningKey(rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()), /signing key: must be ed25519, got rsa/);
  assert.throws(() => loadVerifyKey(rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString()), /verify key: must be ed25519, got rsa/);
  assert.throws(() => loadSigningKey('/no/such/key.pem'), /signing key \/no\/such\/key\.pem: cannot read it \(ENOENT\)/);
});

let nats: TestNatsServer;
before(async () => {
  nats = await startNatsServer();
});
after(async () => {
  await nats?.stop();
});

test('a verifying store accepts only announcements the learner\'s key signed', { timeout: 60_000 }, async () => {
  const keys = generateSigningKeys();
  const nc = await connectNats({ url: nats.url, name: 'sign-test' });
  try {
    const learner = await CheckpointStore.open(nc, { runId: 'signed', signingKey: loadSigningKey(keys.privateKeyPem) });
    const reader = await CheckpointStore.open(nc, { runId: 'signed', verifyKey: loadVerifyKey(keys.publicKeyPem) });
    const intruder = await CheckpointStore.open(nc, { runId: 'signed' }); // NATS write access, no key
    const intruderSigned = await CheckpointStore.open(nc, { runId: 'signed', signingKey: loadSigningKey(generateSigningKeys().privateKeyPem) });
    const bytes = (n: number) => new Uint8Array(randomBytes(n));
    const b1 = bytes(32);
    const a1 = await learner.put(1, b1, sha256Digest(b1));
    assert.equal(typeof a1.meta['signature'], 'string');
    assert.equal((await reader.latest())!.version, 1);

    const refusals: string[] = [];
    const watch = await reader.watch({ onInvalid: (e) => refusals.push(e.message) });
    const got: number[] = [];
    const reading = (async () => {
      for await (const a of watch) {
        got.push(a.version);
        if (a.version === 4) break;
      }
    })();
    // an unsigned v2 and a v3 signed by another key, each with its object: ignored
    const b2 = bytes(32);
    await intruder.put(2, b2, sha256Digest(b2));
    const b3 = bytes(32);
    await intruderSigned.put(3, b3, sha256Digest(b3));
    assert.equal((await reader.latest())!.version, 1, 'latest() skips announcements without the learner\'s signature');
    // the learner's v4 still arrives
    const b4 = bytes(32);
    await learner.put(4, b4, sha256Digest(b4));
    await reading;
    assert.deepEqual(got, [1, 4]);
    assert.equal(refusals.filter((r) => /not signed by the learner's key: ignored/.test(r)).length, 2);
    await watch.stop();
  } finally {
    await nc.drain();
  }
});

test('keys from the environment: RECOVERY_GRPO_CHECKPOINT_KEY_FILE signs (and verifies), ..._PUBKEY_FILE verifies', () => {
  const keys = generateSigningKeys();
  const dir = mkdtempSync(join(tmpdir(), 'sign-env-'));
  writeFileSync(join(dir, 'learner.key'), keys.privateKeyPem);
  writeFileSync(join(dir, 'learner.pub'), keys.publicKeyPem);
  const learner = checkpointKeysFromEnv({}, { RECOVERY_GRPO_CHECKPOINT_KEY_FILE: join(dir, 'learner.key') });
  const reader = checkpointKeysFromEnv({}, { RECOVERY_GRPO_CHECKPOINT_PUBKEY_FILE: join(dir, 'learner.pub') });
  assert.equal(reader.signingKey, undefined);
  const sig = signCheckpoint(learner.signingKey!, 'r', 1, DIGEST, {});
  assert.ok(verifyCheckpoint(reader.verifyKey!, 'r', 1, DIGEST, {}, sig));
  assert.ok(verifyCheckpoint(learner.verifyKey!, 'r', 1, DIGEST, {}, sig), 'the learner verifies with its own public key');
  assert.deepEqual(checkpointKeysFromEnv({}, {}), {}, 'nothing set: no signing, no verifying');
  assert.throws(() => checkpointKeysFromEnv({}, { RECOVERY_GRPO_CHECKPOINT_PUBKEY_FILE: join(dir, 'missing.pub') }), /verify key .*missing\.pub: cannot read it/);
});

test('an announcement copied with its signature and another meta is refused: the signature covers the meta (last_batch_seq)', { timeout: 60_000 }, async () => {
  const keys = generateSigningKeys();
  const nc = await connectNats({ url: nats.url, name: 'sign-meta-test' });
  try {
    const learner = await CheckpointStore.open(nc, { runId: 'signed-meta', signingKey: loadSigningKey(keys.privateKeyPem) });
    const reader = await CheckpointStore.open(nc, { runId: 'signed-meta', verifyKey: loadVerifyKey(keys.publicKeyPem) });
    const b1 = new Uint8Array(randomBytes(32));
    const a1 = await learner.put(1, b1, sha256Digest(b1), { last_batch_seq: 1, step: 1 });
    // anyone who may publish on the subject copies the learner's announcement, signature and object as they are,
    // saying the checkpoint holds batch 99 (the orchestrator catches a learner up as far as latest() says)
    await nc.jetstream().publish(learner.subject, JSONCodec().encode({ ...a1, meta: { ...a1.meta, last_batch_seq: 99 } }));
    const latest = await reader.latest();
    assert.equal(latest?.version, 1);
    assert.equal(latest?.meta['last_batch_seq'], 1, 'latest() is the learner\'s announcement, not the copy');
  } finally {
    await nc.drain();
  }
});
