// --checkpoint-key-file (the learner: it signs every checkpoint announcement) and --checkpoint-pubkey-file (the
// orchestrator and the rollout workers: they verify them). A flag overrides its environment variable
// (CHECKPOINT_KEY_ENV) for this process: every CheckpointStore the process opens reads the keys from there
// (checkpointKeysFromEnv). The file a process will use, from the flag or the variable, is loaded once at start, so a
// missing file or a wrong key is refused before the role connects, with an error naming the flag (or variable) and
// the file (docs/security.md).
import { CHECKPOINT_KEY_ENV, loadSigningKey, loadVerifyKey } from '../lib/checkpoint/sign.ts';
import { SetupError } from '../lib/config/setup-error.ts';

export interface CheckpointKeyArgs {
  checkpointKeyFile?: string;
  checkpointPubkeyFile?: string;
}

export const CHECKPOINT_KEY_OPTION = {
  type: 'string',
  describe: `the learner's ed25519 private key (PEM file): every checkpoint announcement is signed with it (default: the ${CHECKPOINT_KEY_ENV.key} environment variable; docs/security.md)`,
} as const;

export const CHECKPOINT_PUBKEY_OPTION = {
  type: 'string',
  describe: `the learner's ed25519 public key (PEM file): only announcements it signed are used (default: the ${CHECKPOINT_KEY_ENV.pubkey} environment variable; docs/security.md)`,
} as const;

/**
 * Checks the key files this process will use (a flag, else its variable) and makes the flags the variables' values.
 * Throws a SetupError (exit code CONFIG_EXIT_CODE: no restart cures it) naming the flag or variable and the file.
 */
export function applyCheckpointKeyArgs(a: CheckpointKeyArgs, env: NodeJS.ProcessEnv = process.env): void {
  const check = (flag: string, value: string | undefined, name: string, load: (file: string) => unknown) => {
    const fromEnv = env[name]?.trim();
    const file = value ?? (fromEnv ? fromEnv : undefined);
    if (file === undefined) return;
    const source = value !== undefined ? flag : `$${name}`;
    if (file.trim() === '') throw new SetupError(`${source}: the file name is empty`);
    try {
      load(file);
    } catch (e) {
      throw new SetupError(`${source} ${file}: ${(e as Error).message}`, { cause: e });
    }
    env[name] = file;
  };
  check('--checkpoint-key-file', a.checkpointKeyFile, CHECKPOINT_KEY_ENV.key, loadSigningKey);
  check('--checkpoint-pubkey-file', a.checkpointPubkeyFile, CHECKPOINT_KEY_ENV.pubkey, loadVerifyKey);
}
