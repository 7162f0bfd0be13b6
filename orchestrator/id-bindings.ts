// Worker ids bound to the credential that first used them (docs/security.md, "A worker id belongs to the first role
// token that used it"; round 29). A worker chooses its own id unless its credential names one; a role token granting
// any id (`*`) could so present an honest worker's id while that worker is disconnected, take its tasks, or get it
// quarantined. Here, a (role, worker id) is bound for the run to the first role token whose session used it; a session
// of another credential claiming it (another token, the shared token beside the file, a certificate) is refused with
// PERMISSION_DENIED naming the id. The bindings are stored in the run state with each acknowledgement
// (RunState.boundIds), so a restarted orchestrator keeps them; a binding whose token is no longer in the role-token
// file (rotated out) lapses at start. A rotation that keeps both lines a while locks the ids out meanwhile, and a
// wildcard token can squat an id nobody used yet (docs/security.md: pin fixed ids; --unbind, orchestrator/main.ts).
//
// Only role tokens granting any id (`*`) bind: a token whose line names the id needs no binding (the server refuses
// that id to every session whose token is not such a line: lib/transport/role-tokens.ts pinnedElsewhere). Only role
// tokens: the orchestrator knows each one (the file), and each line is its own credential. A client
// certificate without a role token does not (the CA may have issued any number, a rotation changes the fingerprint,
// and k8s/base gives a whole Deployment one per role: binding to it would bind nothing, and lock every replica out at a
// rotation); the shared token or no authentication does not either (every holder is the same credential).
import type { WorkerSession } from '../lib/transport/index.ts';

/**
 * At most this many bindings per role token: when a token that holds as many binds another id, its own least recently
 * claimed binding goes (that id is unbound, logged once per token), never another token's. A token cycling through
 * worker ids so churns only its own bindings (review29 F1: one cap shared by every token, 1,024, let one token fill it
 * and leave every id first used after that unbound for the run). A fleet sharing one wildcard token with more workers
 * than this keeps only its 64 most recently connected ids bound (a token per process: README).
 */
export const BOUND_IDS_PER_TOKEN = 64;

/**
 * A backstop over all tokens (and the run state's bound on `boundIds`: ~40-170 bytes each, at most ~350 kB): reached
 * only when more than 32 wildcard tokens of the file each hold 64 bindings. Ids first used after that are not bound
 * (logged once), as before round 29; a token's own churn at its cap frees a place for each it takes.
 */
export const BOUND_IDS_MAX = 2048;

/** The key of a (role, worker id): `rollout/<id>` (a worker id has no `/`). */
export function bindingKey(role: WorkerSession['role'], workerId: string): string {
  return `${role.toLowerCase()}/${workerId}`;
}

export class IdBindings {
  /** key -> credential id, least recently claimed first (stored in this order, so a restart keeps it). */
  private readonly bound = new Map<string, string>();
  /** credential id -> its keys, least recently claimed first. */
  private readonly byToken = new Map<string, Set<string>>();
  private fullLogged = false;
  private readonly churnLogged = new Set<string>();

  /**
   * `restored`: RunState.boundIds; `live`: the credential ids of the role tokens this process accepts (a binding to one
   * not among them lapses); undefined: no role tokens, nothing binds (restored bindings are kept for a later restart
   * with the file).
   */
  constructor(private readonly o: { restored?: Readonly<Record<string, string>>; live: ReadonlySet<string> | undefined; log: (line: string) => void }) {
    const lapsed: string[] = [];
    let trimmed = 0;
    // in stored order, least recently claimed first; a state stored before the per-token cap may hold more for a
    // token: its oldest go
    for (const [key, credential] of Object.entries(o.restored ?? {})) {
      if (o.live && !o.live.has(credential)) lapsed.push(key);
      else if (this.bind(key, credential)) trimmed++;
    }
    if (this.bound.size) {
      o.log(o.live
        ? `${this.bound.size} worker id(s) stay bound to the role token that first used them (run state)`
        : `${this.bound.size} worker id binding(s) of the run state kept, not enforced without a role-token file`);
    }
    if (lapsed.length) o.log(`${lapsed.length} worker id binding(s) lapsed: their role token is no longer in the role-token file: ${lapsed.slice(0, 16).map((k) => JSON.stringify(k)).join(', ')}${lapsed.length > 16 ? ', ...' : ''}`);
    if (trimmed) o.log(`${trimmed} worker id binding(s) of the run state dropped: a role token holds at most ${BOUND_IDS_PER_TOKEN} (its least recently claimed went)`);
  }

  /**
   * Binds `key` to `credential` (or marks it claimed now if it is already), least recently claimed of the token's first;
   * when the token then holds more than BOUND_IDS_PER_TOKEN, its least recently claimed binding goes: returns that key.
   */
  private bind(key: string, credential: string): string | undefined {
    let keys = this.byToken.get(credential);
    if (!keys) this.byToken.set(credential, (keys = new Set()));
    keys.delete(key);
    keys.add(key);
    this.bound.delete(key);
    this.bound.set(key, credential);
    if (keys.size <= BOUND_IDS_PER_TOKEN) return undefined;
    const oldest = keys.values().next().value as string;
    keys.delete(oldest);
    this.bound.delete(oldest);
    return oldest;
  }

  /**
   * Binds `s`'s (role, worker id) to its credential if it is a role token and the id is not bound yet; returns why `s`
   * is refused when the id is bound to another credential (undefined: it may connect).
   */
  claim(s: WorkerSession): string | undefined {
    const { credential } = s;
    if (!this.o.live) return undefined;
    // a token whose line names the id is the file's word: not bound (the server refuses that id to every session
    // whose credential does not pin it, lib/transport/role-tokens.ts pinnedElsewhere), so two lines for one id (a
    // rotation's overlap) both work
    if (credential.kind === 'token' && credential.pinned) return undefined;
    const key = bindingKey(s.role, s.workerId);
    const holder = this.bound.get(key);
    if (holder === undefined) {
      // only a wildcard role token binds; a session of another credential (the shared token beside the file, a
      // certificate) uses an unbound id as before, and leaves it unbound
      if (credential.kind !== 'token') return undefined;
      const own = this.byToken.get(credential.id)?.size ?? 0;
      if (own < BOUND_IDS_PER_TOKEN && this.bound.size >= BOUND_IDS_MAX) {
        if (!this.fullLogged) this.o.log(`${BOUND_IDS_MAX} worker ids are bound to role tokens: worker ids used from now on are not bound, except in place of a token's own (docs/security.md)`);
        this.fullLogged = true;
        return undefined;
      }
      const dropped = this.bind(key, credential.id);
      if (dropped !== undefined && !this.churnLogged.has(credential.id)) {
        this.churnLogged.add(credential.id);
        this.o.log(`role token ${credential.id} holds ${BOUND_IDS_PER_TOKEN} worker id bindings: each new id it uses unbinds its least recently claimed (now ${JSON.stringify(dropped)}; logged once per token, docs/security.md)`);
      }
      return undefined;
    }
    if (holder === credential.id) {
      this.bind(key, holder); // claimed now: the token's most recent
      return undefined;
    }
    return `worker id ${JSON.stringify(s.workerId)} (role ${s.role}) is bound for this run to the role token that first used it, not this ${credential.kind === 'token' ? 'one' : 'credential'}: connect with that token or under another worker id (or restart the orchestrator with --unbind ${key}: docs/security.md)`;
  }

  /**
   * Binds each key of `restored` not bound yet as the run state would have (taken back from a checkpoint's
   * announcement meta worker_ids when the run state was lost: orchestrator/main.ts, round 33); a binding to a token no longer in
   * the role-token file lapses, as at start. A session that already uses the id is not closed: its next connection is
   * checked. Returns how many were bound.
   */
  restore(restored: Readonly<Record<string, string>>): number {
    let n = 0;
    for (const [key, credential] of Object.entries(restored)) {
      if (this.bound.has(key) || (this.o.live && !this.o.live.has(credential)) || this.bound.size >= BOUND_IDS_MAX) continue;
      this.bind(key, credential);
      n++;
    }
    return n;
  }

  /** The bindings as stored (RunState.boundIds), least recently claimed first; undefined when there is none. */
  stored(): Record<string, string> | undefined {
    if (!this.bound.size) return undefined;
    return Object.fromEntries(this.bound);
  }
}
