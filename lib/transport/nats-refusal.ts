// The one reader of a NATS server's refusal under a connection's grants (lib/transport/nats-permissions.ts). nats.js
// rejects with a NatsError of code PERMISSIONS_VIOLATION, and where the server's text names them sets
// permissionContext { operation: 'publish' | 'subscription', subject }. Read by the orchestrator's read of the
// learner's record (orchestrator/learner-record.ts: final, said once) and by a role opening its own streams
// (nats.ts grantsNameAnotherRun: the grants name another run, exit 78); before round 33 each read it its own way.

/** What the server refused, as far as its error names it. */
export interface PermissionRefusal {
  /** 'publish' or 'subscription', where the error names it. */
  operation?: string;
  subject?: string;
}

/** The server's refusal in `e` of an operation this connection's grant does not allow; undefined when `e` is none. */
export function permissionRefusal(e: unknown): PermissionRefusal | undefined {
  if (e === null || typeof e !== 'object') return undefined;
  const x = e as { permissionContext?: unknown; code?: unknown; message?: unknown };
  if (x.permissionContext !== undefined) {
    const ctx = (x.permissionContext ?? {}) as { operation?: unknown; subject?: unknown };
    return {
      ...(typeof ctx.operation === 'string' ? { operation: ctx.operation } : {}),
      ...(typeof ctx.subject === 'string' ? { subject: ctx.subject } : {}),
    };
  }
  if (x.code === 'PERMISSIONS_VIOLATION' || (typeof x.message === 'string' && /permissions violation/i.test(x.message))) return {};
  return undefined;
}
