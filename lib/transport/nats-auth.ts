// NATS credentials for every process that reaches JetStream (the orchestrator and the three worker roles):
// user + password, or a token, and TLS (CA, and a client certificate for servers that verify clients).
// Secrets come from a value, a file (trailing whitespace trimmed) or the environment, in that order; they are
// never logged, and errors name the file or variable, never the secret.
import { isPemText, readNamedFile } from '../config/named-file.ts';
import { readSecret } from './secrets.ts';

/** Environment variables read when no value or file is given. */
export const NATS_ENV = { user: 'RECOVERY_GRPO_NATS_USER', pass: 'RECOVERY_GRPO_NATS_PASS', token: 'RECOVERY_GRPO_NATS_TOKEN' } as const;

export interface NatsAuthOptions {
  user?: string;
  pass?: string;
  passFile?: string;
  token?: string;
  tokenFile?: string;
  /** PEM files: the CA that signs the server's certificate; a client certificate and key (with verify on the server). */
  tls?: { ca?: string; cert?: string; key?: string };
}

/** What connectNats takes (spread into its options). */
export interface NatsAuth {
  user?: string;
  pass?: string;
  token?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
}

/** A NATS TLS file (nats.js reads these by path); PEM text given in its place is refused, never printed. */
function readable(file: string, what: string): string {
  if (isPemText(file)) throw new Error(`${what}: expects a file name, got text (it holds a PEM marker or a line break; not printed)`);
  readNamedFile(file, what);
  return file;
}

/** Validates and completes NATS credentials; throws an Error naming the option (never the secret). */
export function resolveNatsAuth(o: NatsAuthOptions = {}, env: NodeJS.ProcessEnv = process.env): NatsAuth {
  const user = readSecret(o.user, undefined, NATS_ENV.user, 'NATS user', env);
  const pass = readSecret(o.pass, o.passFile, NATS_ENV.pass, 'NATS password', env);
  const token = readSecret(o.token, o.tokenFile, NATS_ENV.token, 'NATS token', env);
  if (pass !== undefined && user === undefined) throw new Error(`a NATS password needs a user (--nats-user or ${NATS_ENV.user})`);
  if (user !== undefined && pass === undefined) throw new Error(`NATS user ${JSON.stringify(user)} needs a password (--nats-pass-file or ${NATS_ENV.pass})`);
  if (token !== undefined && user !== undefined) throw new Error('NATS: give either a user and password or a token, not both');
  const out: NatsAuth = {};
  if (user !== undefined) Object.assign(out, { user, pass });
  if (token !== undefined) out.token = token;
  const t = o.tls;
  if (t && (t.ca || t.cert || t.key)) {
    if (!!t.cert !== !!t.key) throw new Error('NATS TLS: the client certificate and key go together (--nats-tls-cert with --nats-tls-key)');
    out.tls = {
      ...(t.ca ? { caFile: readable(t.ca, 'NATS TLS CA') } : {}),
      ...(t.cert ? { certFile: readable(t.cert, 'NATS TLS certificate') } : {}),
      ...(t.key ? { keyFile: readable(t.key, 'NATS TLS key') } : {}),
    };
  }
  return out;
}

/** A description for logs: which kind of credentials, never their values. */
export function describeNatsAuth(a: NatsAuth): string {
  const parts = [a.user !== undefined ? `user ${a.user}` : a.token !== undefined ? 'a token' : 'no credentials'];
  if (a.tls) parts.push(a.tls.certFile ? 'TLS with a client certificate' : 'TLS');
  return parts.join(', ');
}
