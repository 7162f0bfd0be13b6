// NATS requests that a dropped connection cannot answer fail at the drop, not at their timeout.
//
// Why: nats.js 2.x keeps a request it sent waiting for its reply until the request's timeout, also when the connection
// drops meanwhile: the reply can then never come (the server that would have sent it is gone, or has forgotten the
// reply subject's interest). A JetStream publish of a checkpoint chunk waits 30 s (object-chunks.ts: long enough for
// 50 MB on a slow but connected server), so a nats-server restart stalled the learner's put, and the run, for 30 s
// (docs/reliability.md, "nats-server restart"). And a request made while the connection is down is queued and then
// dropped when the client dials again (nats.js resets its outbound buffer at each dial): it too waited its timeout.
//
// Here every request of a connection (nc.request: what JetStream publishes, the JetStream API, KV and object-store
// calls all go through) is raced against the connection's next 'disconnect' status event: it rejects with a
// NatsDisconnectedError naming its subject as soon as the drop is known. A request made while the connection is down
// waits for the reconnect (up to its timeout) and is sent then. The callers' retries (the learner's publish, a
// follower's catch-up) then run on the new connection at once. What was in flight may or may not have been applied:
// callers retry idempotently (CheckpointStore.put: a stored object of the same digest is only re-announced, and the
// announcement carries a Nats-Msg-Id, so JetStream keeps one).
import { NatsError, type Msg, type NatsConnection, type Payload, type RequestOptions } from 'nats';

/**
 * An in-flight request lost to a dropped connection: code 'DISCONNECT', as nats.js's own disconnect errors. A NatsError,
 * since nats.js's callers of nc.request use its methods on what it rejects with (KV's put: isJetStreamError()).
 */
export class NatsDisconnectedError extends NatsError {
  constructor(readonly subject: string, why: string) {
    super(`NATS request on ${subject}: ${why} (what was sent may or may not have been applied; retry once reconnected)`, 'DISCONNECT');
    this.name = 'NatsDisconnectedError';
  }
}

type Request = (subject: string, payload?: Payload, opts?: RequestOptions) => Promise<Msg>;

/** nats.js's default request timeout (nc.request without one). */
const DEFAULT_TIMEOUT_MS = 1000;

const guarded = new WeakSet<NatsConnection>();
/** Per guarded connection: who is told at its next 'disconnect' (onDisconnect). */
const dropListeners = new WeakMap<NatsConnection, Set<(why: string) => void>>();

/**
 * Calls `fn` (once) when `nc` next drops, with why; returns the function that stops listening. For work that is not
 * a request (a subscription awaiting the chunks of an object: object-chunks.ts) and so is not failed by the guard
 * below. One status listener per connection: nats.js keeps every status iterator until the connection closes, so
 * one per read would pile up over a long run. Installs the guard when it is not yet installed.
 */
export function onDisconnect(nc: NatsConnection, fn: (why: string) => void): () => void {
  failRequestsOnDisconnect(nc);
  const set = dropListeners.get(nc)!;
  set.add(fn);
  return () => set.delete(fn);
}

/**
 * Makes every request of `nc` fail with NatsDisconnectedError when the connection drops before its reply, and wait
 * for the reconnect when made while the connection is down (above). Idempotent; call it right after connecting (the
 * connection is taken to be up then).
 */
export function failRequestsOnDisconnect(nc: NatsConnection): void {
  if (guarded.has(nc)) return;
  guarded.add(nc);
  const request: Request = nc.request.bind(nc);
  // the rejecters of the requests awaiting their reply: a Set, not a shared promise, so that a long run's requests
  // leave nothing behind once answered
  const inFlight = new Set<(why: string) => void>();
  const listeners = new Set<(why: string) => void>();
  dropListeners.set(nc, listeners);
  let up = true;
  const waiters = new Set<() => void>();
  const release = () => {
    for (const w of waiters) w();
    waiters.clear();
  };
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        up = false;
        const why = `the connection to ${String(s.data)} dropped before the reply came`;
        for (const fail of inFlight) fail(why);
        inFlight.clear();
        for (const tell of listeners) tell(why);
        listeners.clear();
      } else if (s.type === 'reconnect') {
        up = true;
        release();
      }
    }
  })()
    .catch(() => {})
    // closed: whoever waits for a reconnect goes on, and nats.js refuses the request (CONNECTION_CLOSED)
    .finally(() => {
      up = true;
      release();
    });

  const send: Request = (subject, payload, opts) =>
    new Promise<Msg>((resolve, reject) => {
      const fail = (why: string) => reject(new NatsDisconnectedError(subject, why));
      inFlight.add(fail);
      request(subject, payload, opts)
        .then(resolve, reject)
        .finally(() => inFlight.delete(fail));
    });

  const guardedRequest: Request = async (subject, payload, opts) => {
    if (!up) {
      const ms = opts?.timeout ?? DEFAULT_TIMEOUT_MS;
      let timer: NodeJS.Timeout | undefined;
      let wake!: () => void;
      const back = await new Promise<boolean>((resolve) => {
        wake = () => resolve(true);
        waiters.add(wake);
        timer = setTimeout(() => resolve(false), ms);
      });
      clearTimeout(timer);
      waiters.delete(wake);
      if (!back) throw new NatsDisconnectedError(subject, `not sent: the connection was down for its whole ${ms} ms timeout`);
    }
    return send(subject, payload, opts);
  };
  nc.request = guardedRequest;
}
