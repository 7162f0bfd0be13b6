// Secrets (the orchestrator's bearer token, NATS passwords and tokens) come from a value, a file (trailing
// whitespace trimmed) or the environment, in that order. Errors name the file or the option, never the secret.
import { readFileSync } from 'node:fs';

export function readSecret(value: string | undefined, file: string | undefined, envName: string, what: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (value !== undefined) {
    if (value.trim() === '') throw new Error(`${what} is empty`);
    return value;
  }
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new Error(`${what} file ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const v = text.trim();
    if (!v) throw new Error(`${what} file ${file} is empty`);
    return v;
  }
  const e = env[envName];
  return e !== undefined && e.trim() !== '' ? e.trim() : undefined;
}
