// A secret the local run writes into its output folder (role tokens, the checkpoint signing key): readable by
// this user only. The file is made anew, so that a file left by an earlier run into the same folder (whose mode
// `mode` would not change) or a link put in its place never receives the secret.
import { rmSync, writeFileSync } from 'node:fs';

export function writePrivateFile(path: string, text: string): void {
  rmSync(path, { force: true });
  writeFileSync(path, text, { mode: 0o600, flag: 'wx' });
}
