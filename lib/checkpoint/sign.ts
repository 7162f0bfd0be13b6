// Checkpoint announcements signed by the learner's key: an ed25519 signature over (run id, version, digest, meta),
// so a reader can tell that the learner, not just anyone with write access to NATS, published a checkpoint and what it
// says of it. The digest already binds the bytes (lib/transport CheckpointStore verifies it on every fetch); the
// signature binds the digest to the run and the version, and the meta readers act on (its last_batch_seq: how far the
// orchestrator catches a learner up) to both. Keys are PEM (PKCS#8 private, SPKI public).
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { isPemText, readNamedFile } from '../config/named-file.ts';
import { canonicalJson } from './digest.ts';

/**
 * The environment variables naming the key files, read by every process that opens a CheckpointStore
 * (checkpointKeysFromEnv); the CLI's --checkpoint-key-file / --checkpoint-pubkey-file override them.
 */
export const CHECKPOINT_KEY_ENV = { key: 'RECOVERY_GRPO_CHECKPOINT_KEY_FILE', pubkey: 'RECOVERY_GRPO_CHECKPOINT_PUBKEY_FILE' } as const;

/**
 * The bytes signed: a fixed context string, the three fields and the announcement's meta (without its signature) as
 * canonical JSON, as a reader sees it after the JSON round trip of the wire. v1 signed no meta: anyone who could
 * publish an announcement could copy a signed one and change its last_batch_seq (round 18).
 */
export function signedPayload(runId: string, version: number, digest: string, meta: Record<string, unknown>): Buffer {
  if (!Number.isSafeInteger(version) || version < 0) throw new Error(`checkpoint signature: version must be a non-negative integer, got ${version}`);
  const { signature: _signature, ...rest } = meta;
  const wire: unknown = JSON.parse(JSON.stringify(rest));
  return Buffer.from(JSON.stringify(['recovery-grpo checkpoint announcement v2', runId, version, digest, canonicalJson(wire)]), 'utf8');
}

/** Signs (run id, version, digest, meta) with the learner's ed25519 private key; base64. */
export function signCheckpoint(key: KeyObject, runId: string, version: number, digest: string, meta: Record<string, unknown>): string {
  if (key.asymmetricKeyType !== 'ed25519' || key.type !== 'private') throw new Error('checkpoint signature: the signing key must be an ed25519 private key');
  return sign(null, signedPayload(runId, version, digest, meta), key).toString('base64');
}

/** True when `signature` (base64) is the learner's signature of (run id, version, digest, meta); meta's own `signature` is left out. */
export function verifyCheckpoint(key: KeyObject, runId: string, version: number, digest: string, meta: Record<string, unknown>, signature: unknown): boolean {
  if (typeof signature !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(signature)) return false;
  const sig = Buffer.from(signature, 'base64');
  if (sig.length !== 64) return false;
  try {
    return verify(null, signedPayload(runId, version, digest, meta), key, sig);
  } catch {
    return false;
  }
}

/** A new ed25519 key pair as PEM text (the learner keeps the private key; every reader gets the public one). */
export function generateSigningKeys(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

function pemOf(pemOrFile: string, what: string): string {
  if (isPemText(pemOrFile)) return pemOrFile;
  return readNamedFile(pemOrFile, what).toString('utf8');
}

/** The learner's signing key, from PEM text or a file; refused unless it is an ed25519 private key. */
export function loadSigningKey(pemOrFile: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pemOf(pemOrFile, 'checkpoint signing key'));
  } catch (e) {
    throw new Error(`checkpoint signing key: not a PEM private key (${(e as Error).message})`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`checkpoint signing key: must be ed25519, got ${key.asymmetricKeyType}`);
  return key;
}

/** The learner's public key, from PEM text or a file; refused unless it is an ed25519 public key. */
export function loadVerifyKey(pemOrFile: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pemOf(pemOrFile, 'checkpoint verify key'));
  } catch (e) {
    throw new Error(`checkpoint verify key: not a PEM public key (${(e as Error).message})`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`checkpoint verify key: must be ed25519, got ${key.asymmetricKeyType}`);
  return key;
}
