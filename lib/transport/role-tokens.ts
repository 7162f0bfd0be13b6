// Credentials that name a role: a token file maps each token to the one role (and optionally the one worker
// id) it may connect as, so a rollout worker's token cannot open a learner session. Format, one grant a line
// (blank lines and `#` comments ignored):
//
//   <role> <worker-id | *> <token>        e.g.   learner  *         4f0c...   /   rollout  rollout-0  9a1b...
//
// Roles: rollout, reward, learner. Tokens are at least 16 characters and unique; errors name the file and
// line, never a token.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readNamedFile } from '../config/named-file.ts';
import type { WorkerRole } from './proto.ts';
import { WORKER_ID_PATTERN } from './messages.ts';

/** What a credential (a role token, a client certificate) allows: one role, and optionally one worker id. */
export interface Grant {
  role: WorkerRole;
  /** The only worker id this credential may connect as; absent: any. */
  workerId?: string;
}

export interface RoleGrant extends Grant {
  token: string;
}

const ROLES: Record<string, WorkerRole> = { rollout: 'ROLLOUT', reward: 'REWARD', learner: 'LEARNER' };
/** The role names credentials use (lower case), e.g. in a token file or a certificate's URI. */
export const ROLE_NAMES = Object.keys(ROLES);
/** The WorkerRole of a credential's role name (case-insensitive), or undefined. */
export function roleOfName(name: string): WorkerRole | undefined {
  return Object.hasOwn(ROLES, name.toLowerCase()) ? ROLES[name.toLowerCase()] : undefined;
}

const MIN_TOKEN_CHARS = 16;

/** Parses a role-token file's text; `source` names it in errors. */
export function parseRoleTokens(text: string, source: string): RoleGrant[] {
  const grants: RoleGrant[] = [];
  const seen = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) return;
    const where = `${source}:${i + 1}`;
    const fields = line.split(/\s+/);
    if (fields.length !== 3) throw new Error(`${where}: expected "<role> <worker-id|*> <token>", got ${fields.length} fields`);
    const [role, workerId, token] = fields as [string, string, string];
    const r = roleOfName(role);
    if (!r) throw new Error(`${where}: role ${JSON.stringify(role)} is not one of ${Object.keys(ROLES).join(', ')}`);
    if (workerId !== '*' && !WORKER_ID_PATTERN.test(workerId)) throw new Error(`${where}: worker id ${JSON.stringify(workerId)} must be * or match [A-Za-z0-9._:-]{1,128}, and not be "__proto__" (reserved: a key JSON records drop)`);
    if (token.length < MIN_TOKEN_CHARS) throw new Error(`${where}: the token is shorter than ${MIN_TOKEN_CHARS} characters`);
    if (seen.has(token)) throw new Error(`${where}: the token is already granted on an earlier line (each token names one role)`);
    seen.add(token);
    grants.push({ token, role: r, ...(workerId !== '*' ? { workerId } : {}) });
  });
  if (grants.length === 0) throw new Error(`${source}: no grants (lines "<role> <worker-id|*> <token>")`);
  return grants;
}

/** A role-token file's text for `grants` (parseRoleTokens reads it back). */
export function formatRoleTokens(grants: readonly RoleGrant[], header = ''): string {
  const name = (role: WorkerRole) => ROLE_NAMES.find((n) => ROLES[n] === role)!;
  return header + grants.map((g) => `${name(g.role)} ${g.workerId ?? '*'} ${g.token}\n`).join('');
}

/** Reads and parses a role-token file. */
export function readRoleTokens(file: string): RoleGrant[] {
  return parseRoleTokens(readNamedFile(file, 'role token file').toString('utf8'), `role token file ${file}`);
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Matches a presented token against the grants in constant time per grant (every grant is compared). */
export function grantMatcher(grants: readonly RoleGrant[]): (token: string) => RoleGrant | undefined {
  const digests = grants.map((g) => ({ g, d: digest(g.token) }));
  return (token) => {
    const d = digest(token);
    let found: RoleGrant | undefined;
    for (const x of digests) if (timingSafeEqual(d, x.d) && !found) found = x.g;
    return found;
  };
}

/**
 * What authenticated a session (WorkerSession.credential): the one identity the orchestrator has for it beyond the
 * worker id the worker chose. `token`: a role token (a line of the role-token file), `id` the first 16 hex digits of
 * the SHA-256 of the token (stable across restarts, not the token); `cert`: a client certificate naming a role (and no
 * role token), `id` the first 16 hex digits of the SHA-256 of its DER bytes; `shared`: the shared token alone (every
 * holder is the same credential); `none`: no authentication (loopback). `pinned`: the credential names the one
 * worker id it may connect as (a role-token line or certificate URI with a worker id).
 */
export interface SessionCredential {
  kind: 'token' | 'cert' | 'shared' | 'none';
  id: string;
  pinned: boolean;
}

/** The credential id of a role token (SessionCredential.id): `token:` and 16 hex digits of its SHA-256. */
export function tokenCredentialId(token: string): string {
  return `token:${digest(token).toString('hex').slice(0, 16)}`;
}

/**
 * Why a session may not connect as `workerId`: a line of the file names that id for the role (pins it to its own
 * token), and the session's role token (`token`: the line it matched; undefined for the shared token or a certificate
 * without one) is not such a line. So neither a wildcard token nor the shared token given beside the file nor a
 * certificate (even one naming the id: the file's line is the word) can take a pinned worker's id (and with it its
 * tasks, its quarantine, or its vote): review29 F2, until then only wildcard role tokens were refused. `what` names
 * the credential. Undefined: it may (its token's line names this id, or no line does).
 */
export function pinnedElsewhere(grants: readonly RoleGrant[]): (token: Grant | undefined, role: WorkerRole, workerId: string, what?: string) => string | undefined {
  const pinned = new Set(grants.filter((g) => g.workerId !== undefined).map((g) => `${g.role}/${g.workerId}`));
  return (token, role, workerId, what = 'this credential') =>
    pinned.has(`${role}/${workerId}`) && !(token?.role === role && token.workerId === workerId)
      ? `worker id ${JSON.stringify(workerId)} is granted to another token (a line of the role-token file names it for role ${role}); ${what} does not name it`
      : undefined;
}

/** Why `grant` does not allow a Hello as `role` / `workerId`, or undefined if it does; `what` names the credential. */
export function grantRefusal(grant: Grant, role: WorkerRole, workerId: string, what = 'this credential'): string | undefined {
  if (grant.role !== role) return `${what} grants role ${grant.role}, not ${role}`;
  if (grant.workerId !== undefined && grant.workerId !== workerId) return `${what} grants worker id ${JSON.stringify(grant.workerId)}, not ${JSON.stringify(workerId)}`;
  return undefined;
}
