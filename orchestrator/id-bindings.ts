// Worker ids bound to the credential that first used them (docs/security.md, "A worker id belongs to the first role
// token that used it"; round 29). A worker chooses its own id unless its credential names one; a role token granting
// any id (`*`) could so present an honest worker's id while that worker is disconnected, take its tasks, or get it
// quarantined. Here, a (role, worker id) is bound for the run to the first role token whose session used it; a session
// of another credential claiming it (another token, the shared token beside the file, a certificate) is refused with
// PERMISSION_DENIED naming the id. The bindings are stored in the
// run state with each acknowledgement (RunState.boundIds), so a restarted orchestrator keeps them; a binding whose
// token is no longer in the role-token file (rotated out) lapses at start, so a rotation does not lock a worker out.
//
// Only role tokens granting any id (`*`) bind: a token whose line names the id needs no binding (the server refuses
// that id to every wildcard token: lib/transport/role-tokens.ts pinnedElsewhere). Only role tokens: the orchestrator knows each one (the file), and each line is its own credential. A client
// certificate without a role token does not (the CA may have issued any number, a rotation changes the fingerprint,
// and k8s/base gives a whole Deployment one per role: binding to it would bind nothing, and lock every replica out at a
// rotation); the shared token or no authentication does not either (every holder is the same credential).
import type { WorkerSession } from '../lib/transport/index.ts';

/**
 * At most this many bindings are kept (and stored: ~40-170 bytes each in the run state, at most ~170 kB): a token
 * cycling through worker ids cannot grow the state until its write fails. Ids first used after it are not bound
 * (logged once): as before round 29.
 */
export const BOUND_IDS_MAX = 1024;

/** The key of a (role, worker id): `rollout/<id>` (a worker id has no `/`). */
export function bindingKey(role: WorkerSession['role'], workerId: string): string {
  return `${role.toLowerCase()}/${workerId}`;
}

export class IdBindings {
  private readonly bound = new Map<string, string>();
  private fullLogged = false;

  /**
   * `restored`: RunState.boundIds; `live`: the credential ids of the role tokens this process accepts (a binding to one
   * not among them lapses); undefined: no role tokens, nothing binds (restored bindings are kept for a later restart
   * with the file).
   */
  constructor(private readonly o: { restored?: Readonly<Record<string, string>>; live: ReadonlySet<string> | undefined; log: (line: string) => void }) {
    let lapsed = 0;
    for (const [key, credential] of Object.entries(o.restored ?? {})) {
      if (o.live && !o.live.has(credential)) lapsed++;
      else this.bound.set(key, credential);
    }
    if (this.bound.size) o.log(`${this.bound.size} worker id(s) stay bound to the role token that first used them (run state)`);
    if (lapsed) o.log(`${lapsed} worker id binding(s) lapsed: their role token is no longer in the role-token file`);
  }

  /**
   * Binds `s`'s (role, worker id) to its credential if it is a role token and the id is not bound yet; returns why `s`
   * is refused when the id is bound to another credential (undefined: it may connect).
   */
  claim(s: WorkerSession): string | undefined {
    const credential = s.credential as WorkerSession['credential'] | undefined; // absent on a session not made by the server (tests)
    if (!this.o.live) return undefined;
    // a token whose line names the id is the file's word: not bound (the server refuses a wildcard token that id,
    // lib/transport/role-tokens.ts pinnedElsewhere), so two lines for one id (a rotation's overlap) both work
    if (credential?.kind === 'token' && credential.pinned) return undefined;
    const key = bindingKey(s.role, s.workerId);
    const holder = this.bound.get(key);
    if (holder === undefined) {
      // only a wildcard role token binds; a session of another credential (the shared token beside the file, a
      // certificate) uses an unbound id as before, and leaves it unbound
      if (credential?.kind !== 'token') return undefined;
      if (this.bound.size >= BOUND_IDS_MAX) {
        if (!this.fullLogged) this.o.log(`${BOUND_IDS_MAX} worker ids are bound to role tokens: worker ids used from now on are not bound (docs/security.md)`);
        this.fullLogged = true;
        return undefined;
      }
      this.bound.set(key, credential.id);
      return undefined;
    }
    if (holder === credential?.id) return undefined;
    return `worker id ${JSON.stringify(s.workerId)} (role ${s.role}) is bound for this run to the role token that first used it, not this ${credential?.kind === 'token' ? 'one' : 'credential'}: connect with that token or under another worker id`;
  }

  /** The bindings as stored (RunState.boundIds), keys sorted; undefined when there is none. */
  stored(): Record<string, string> | undefined {
    if (!this.bound.size) return undefined;
    return Object.fromEntries([...this.bound].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
}
