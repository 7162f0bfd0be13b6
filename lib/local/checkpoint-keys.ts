// The local run's checkpoint signing keys (docs/security.md, "Signed checkpoints"): a fresh ed25519 pair per run,
// both files mode 0600 in the run folder. The learner signs every announcement with the private key
// (--checkpoint-key-file); the orchestrator, the rollout workers and the final evaluation accept only announcements
// the public key verifies (--checkpoint-pubkey-file; the evaluation opens its store with verifyKey).
import { writePrivateFile } from './private-file.ts';
import { join } from 'node:path';
import { generateSigningKeys } from '../checkpoint/sign.ts';

export interface LocalCheckpointKeys {
  /** The learner's private key (PEM). */
  keyFile: string;
  /** The public key every reader verifies with (PEM). */
  pubkeyFile: string;
}

export function writeLocalCheckpointKeys(dir: string): LocalCheckpointKeys {
  const { privateKeyPem, publicKeyPem } = generateSigningKeys();
  const keyFile = join(dir, 'checkpoint.key');
  const pubkeyFile = join(dir, 'checkpoint.pub');
  writePrivateFile(keyFile, privateKeyPem);
  writePrivateFile(pubkeyFile, publicKeyPem);
  return { keyFile, pubkeyFile };
}
