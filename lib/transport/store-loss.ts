// A JetStream store lost with the server's store directory (nats-server restarted empty): every stream and bucket
// is gone, and the processes that opened them earlier keep using their names. A request on a missing stream
// fails `stream not found` (JetStream error 10059); a publish to its subjects has no responders (503). Only the
// owner of a store re-creates it (the learner its checkpoints and optimizer state, the orchestrator its run
// state; with per-role NATS permissions nobody else may): `recreatingOnLoss` runs a write, and when the stream
// is missing, the owner's `recover` re-creates it (and writes back what it holds) and the write runs once more.
// Readers never create: they retry until the owner has.
import type { JetStreamManager, NatsConnection, StreamInfo } from 'nats';

/** JetStream's error code for a stream that does not exist. */
export const STREAM_NOT_FOUND = 10059;

/** True for JetStream's answer to a request on a missing stream or bucket (not a 503, which nothing answered). */
export function isStreamNotFound(e: unknown): boolean {
  const err = e as { message?: unknown; api_error?: { err_code?: number } } | null;
  return err?.api_error?.err_code === STREAM_NOT_FOUND || (typeof err?.message === 'string' && /stream not found/i.test(err.message));
}

/** True for the error of a request on a missing stream or bucket, or of a publish nothing stores (503). */
export function isStoreLost(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown } | null;
  return isStreamNotFound(e) || err?.code === '503' || (typeof err?.message === 'string' && /no responders/i.test(err.message));
}

/**
 * Makes sure stream `name` exists: nothing when it does; otherwise `create()` (a stream or bucket creation,
 * e.g. nats.js's views.kv/os, which add the stream with their own configuration). True when it was created
 * here; another owner creating it at the same moment counts as existing.
 */
export async function ensureStream(jsm: JetStreamManager, name: string, create: () => Promise<unknown>): Promise<boolean> {
  let info: StreamInfo | null = null;
  try {
    info = await jsm.streams.info(name);
  } catch (e) {
    if (!isStoreLost(e)) throw e;
  }
  if (info) return false;
  try {
    await create();
  } catch (e) {
    if (/already in use|exists/i.test((e as Error).message)) return false;
    throw e;
  }
  return true;
}

/** A request that got no answer in time: on a lost store, nats.js's direct gets end this way (no 503). */
function isTimeout(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown } | null;
  return err?.code === 'TIMEOUT' || (typeof err?.message === 'string' && /timeout/i.test(err.message));
}

/**
 * Runs a write of a store's owner; when it fails because the store is gone, awaits `recover` (which re-creates
 * what is missing, writes back whatever must be there first, and says whether it re-created anything) and runs
 * the write once more. A timeout may be a lost store too (a direct get on a missing stream is not answered):
 * `recover` looks, and the write is retried only if something was missing. Any other failure, or a second
 * one, is the caller's (its own retry loop).
 */
export async function recreatingOnLoss<T>(write: () => Promise<T>, recover: (cause: Error) => Promise<boolean>): Promise<T> {
  try {
    return await write();
  } catch (e) {
    const lost = isStoreLost(e);
    if (!lost && !isTimeout(e)) throw e;
    const recreated = await recover(e as Error);
    if (!lost && !recreated) throw e;
    return write();
  }
}

/**
 * Calls `onReconnect` after every reconnection of `nc` (the server may have come back without its store: the
 * owner checks and re-creates what it holds). Returns a stop function.
 */
export function onNatsReconnect(nc: NatsConnection, onReconnect: () => void): () => void {
  let stopped = false;
  const events = nc.status()[Symbol.asyncIterator]();
  void (async () => {
    // ends when the connection closes
    for (let r = await events.next(); !r.done && !stopped; r = await events.next()) if (r.value.type === 'reconnect') onReconnect();
  })().catch(() => undefined);
  return () => {
    stopped = true;
    void events.return?.(undefined);
  };
}
