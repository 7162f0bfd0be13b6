// Secrets (the orchestrator's bearer token, NATS passwords and tokens) come from a value, a file (trailing
// whitespace trimmed) or the environment, in that order. Errors name the file or the option, never the secret.
import { readNamedFile } from '../config/named-file.ts';

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
