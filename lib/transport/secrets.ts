// Secrets (the orchestrator's bearer token, NATS passwords and tokens) come from a value, a file (trailing
// whitespace trimmed) or the environment, in that order. Errors name the file or the option, never the secret.
import { readFileSync } from 'node:fs';

/**
 * A file's bytes; a file that cannot be read is an Error `<what> <file>: cannot read it (<code>)`, naming the option
 * or field it came from (every credential and TLS file of the roles is read through here).
 */
export function readNamedFile(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new Error(`${what} ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

export function readSecret(value: string | undefined, file: string | undefined, envName: string, what: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (value !== undefined) {
    if (value.trim() === '') throw new Error(`${what} is empty`);
    return value;
  }
  if (file !== undefined) {
    const v = readNamedFile(file, `${what} file`).toString('utf8').trim();
    if (!v) throw new Error(`${what} file ${file} is empty`);
    return v;
  }
  const e = env[envName];
  return e !== undefined && e.trim() !== '' ? e.trim() : undefined;
}
