// --checkpoint-key-file (learner) and --checkpoint-pubkey-file (orchestrator, rollout worker): the flag overrides its
// environment variable, and the file a role will use is checked at start: unreadable, not PEM, the wrong kind of key
// or not ed25519 is refused with an error naming the flag (or variable) and the file, exit code 78 (no restart
// cures it), before the role connects anywhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyCheckpointKeyArgs } from '../../cli/checkpoint-keys.ts';
import { CHECKPOINT_KEY_ENV, generateSigningKeys } from '../../lib/checkpoint/sign.ts';
import { checkpointKeysFromEnv } from '../../lib/transport/nats.ts';
import { SetupError } from '../../lib/config/setup-error.ts';
import { BIN } from '../helpers/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'checkpoint-key-flags-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};
const keys = generateSigningKeys();
const priv = file('learner.key', keys.privateKeyPem);
const pub = file('learner.pub', keys.publicKeyPem);
const rsa = file('rsa.key', generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
const junk = file('junk.pem', 'not a key\n');
const missing = join(dir, 'missing.pem');

test('a flag overrides its variable; the store then reads the flag\'s key', () => {
  const other = generateSigningKeys();
  const env: NodeJS.ProcessEnv = { [CHECKPOINT_KEY_ENV.key]: file('other.key', other.privateKeyPem), [CHECKPOINT_KEY_ENV.pubkey]: file('other.pub', other.publicKeyPem) };
  applyCheckpointKeyArgs({ checkpointKeyFile: priv, checkpointPubkeyFile: pub }, env);
  assert.equal(env[CHECKPOINT_KEY_ENV.key], priv);
  assert.equal(env[CHECKPOINT_KEY_ENV.pubkey], pub);
  const { signingKey, verifyKey } = checkpointKeysFromEnv({}, env);
  assert.equal(signingKey?.export({ type: 'pkcs8', format: 'pem' }).toString(), keys.privateKeyPem);
  assert.equal(verifyKey?.export({ type: 'spki', format: 'pem' }).toString(), keys.publicKeyPem);
  // no flag, no variable: nothing set; no flag: the variable's file is checked as well
  const none: NodeJS.ProcessEnv = {};
  applyCheckpointKeyArgs({}, none);
  assert.deepEqual(none, {});
  assert.throws(() => applyCheckpointKeyArgs({}, { [CHECKPOINT_KEY_ENV.pubkey]: missing }), (e: Error) => e instanceof SetupError && e.message.startsWith(`$${CHECKPOINT_KEY_ENV.pubkey} ${missing}: `) && /ENOENT/.test(e.message));
});

test('a bad key file is refused, naming the flag and the file', () => {
  const cases: Array<[Parameters<typeof applyCheckpointKeyArgs>[0], string, RegExp]> = [
    [{ checkpointKeyFile: missing }, `--checkpoint-key-file ${missing}`, /cannot read it \(ENOENT\)/],
    [{ checkpointKeyFile: junk }, `--checkpoint-key-file ${junk}`, /not a PEM private key/],
    [{ checkpointKeyFile: pub }, `--checkpoint-key-file ${pub}`, /not a PEM private key/],
    [{ checkpointKeyFile: rsa }, `--checkpoint-key-file ${rsa}`, /must be ed25519, got rsa/],
    [{ checkpointPubkeyFile: missing }, `--checkpoint-pubkey-file ${missing}`, /cannot read it \(ENOENT\)/],
    [{ checkpointPubkeyFile: junk }, `--checkpoint-pubkey-file ${junk}`, /not a PEM public key/],
    [{ checkpointPubkeyFile: rsa }, `--checkpoint-pubkey-file ${rsa}`, /must be ed25519, got rsa/],
    [{ checkpointKeyFile: '' }, '--checkpoint-key-file', /the file name is empty/],
  ];
  for (const [args, prefix, why] of cases) {
    const env: NodeJS.ProcessEnv = {};
    assert.throws(() => applyCheckpointKeyArgs(args, env), (e: Error) => {
      assert.ok(e instanceof SetupError, `${prefix}: a SetupError`);
      assert.ok(e.message.startsWith(`${prefix}: `), `${e.message} starts with ${prefix}`);
      assert.match(e.message, why);
      return true;
    });
    assert.deepEqual(env, {}, 'nothing set');
  }
});

const run = (args: string[]) => new Promise<{ code: number | null; stderr: string }>((done) => {
  const child = execFile(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, RECOVERY_GRPO_LOG_FORMAT: 'text' } }, (_e, _stdout, stderr) => done({ code: child.exitCode, stderr }));
});

test('the roles refuse a bad key file at start: exit code 78, one line naming the flag and the file', { timeout: 120_000 }, async () => {
  // nothing listens on these ports: a role that got past the check would retry its connection until the timeout
  const [learner, rollout, orchestrator] = await Promise.all([
    run(['learner', '--orchestrator', '127.0.0.1:9', '--nats', 'nats://127.0.0.1:9', '--metrics-port', '0', '--checkpoint-key-file', pub]),
    run(['rollout-worker', '--orchestrator', '127.0.0.1:9', '--nats', 'nats://127.0.0.1:9', '--metrics-port', '0', '--checkpoint-pubkey-file', missing]),
    run(['orchestrator', '--nats', 'nats://127.0.0.1:9', '--metrics-port', '0', '--checkpoint-pubkey-file', rsa]),
  ]);
  assert.equal(learner.code, 78, learner.stderr);
  assert.match(learner.stderr, new RegExp(`error: --checkpoint-key-file ${pub}: checkpoint signing key: not a PEM private key`));
  assert.equal(rollout.code, 78, rollout.stderr);
  assert.match(rollout.stderr, new RegExp(`error: --checkpoint-pubkey-file ${missing}: .*cannot read it \\(ENOENT\\)`));
  assert.equal(orchestrator.code, 78, orchestrator.stderr);
  assert.match(orchestrator.stderr, new RegExp(`orchestrator: --checkpoint-pubkey-file ${rsa}: checkpoint verify key: must be ed25519, got rsa`));
});
