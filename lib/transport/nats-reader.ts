// The bytes a dropped NATS connection had read but not yet parsed never reach the next connection's parser.
//
// Why: nats.js 2.x reads each connection in a loop `for await (const b of transport) this.parser.parse(b)` (protocol.js
// dial), where `this.parser` is the connection's CURRENT parser: nats.js makes a new one at each dial. When the client
// drops a connection itself (its PINGs went unanswered: a cut link, NatsConnectOptions.pingIntervalMs) the socket is
// closed only once what it was writing is flushed, i.e. once the link is back, and by then the server has sent a
// flood of what was held for it (replies, pushed chunks). The old loop was still working through those reads when the
// reconnect, which starts at once, made the new parser: the rest of the old stream was parsed as the start of the new
// one. Round 20's fault c runs (5 s PINGs) showed it in every role: replies that were not JSON ("Bad JSON": a
// message's payload taken from the other stream), then `parse error [0]: {"type":"io.nats.jetstream.api.v1...` and a
// reader loop that ended, leaving the connection deaf; the orchestrator then never exited.
//
// Here nats.js's own hook is used: a dial calls `discard()` on the transport it replaces (a no-op in its Node
// transport). A discarded transport's reader yields nothing more, and a read it had already handed out is not parsed
// (the check in the parser: a read can be in the hands of the loop when the new dial starts). Nothing of it is lost
// that could have been used: what was in flight on that connection fails at the drop (nats-disconnect.ts).
import type { NatsConnection } from 'nats';

interface TransportInternals {
  discard(): void;
  iterate(): AsyncGenerator<Uint8Array>;
}
interface ParserInternals {
  parse(buf: Uint8Array): void;
}

/** Transports a dial has replaced. */
const discarded = new WeakSet<object>();
/** The transport each read handed to the reader loop came from (reads are Buffers: objects). */
const sourceOf = new WeakMap<Uint8Array, object>();
const patched = new WeakSet<object>();

/** True when `buf` was read by a connection a dial has since replaced: the current parser must not see it. */
export function isLeftover(buf: Uint8Array): boolean {
  const t = sourceOf.get(buf);
  return t !== undefined && discarded.has(t);
}

function internalsOf(nc: NatsConnection): { transport: TransportInternals; parser: ParserInternals } | undefined {
  const protocol = (nc as unknown as { protocol?: { transport?: unknown; parser?: unknown } }).protocol;
  const transport = protocol?.transport as TransportInternals | undefined;
  const parser = protocol?.parser as ParserInternals | undefined;
  if (typeof transport?.discard !== 'function' || typeof transport.iterate !== 'function' || typeof parser?.parse !== 'function') return undefined;
  return { transport, parser };
}

/**
 * Makes every nats.js connection of this process drop the unparsed reads of a connection it replaced (above).
 * Idempotent; true when in place, false (nothing changed) where nats.js's internals are not where 2.29 keeps them
 * (test/transport/nats-reader.test.ts fails then, so an upgrade is noticed).
 */
export function dropLeftoverReads(nc: NatsConnection): boolean {
  const found = internalsOf(nc);
  if (!found) return false;
  const tproto = Object.getPrototypeOf(found.transport) as TransportInternals;
  const pproto = Object.getPrototypeOf(found.parser) as ParserInternals;
  if (patched.has(tproto) && patched.has(pproto)) return true;
  if (!Object.prototype.hasOwnProperty.call(tproto, 'iterate') || !Object.prototype.hasOwnProperty.call(pproto, 'parse')) return false;
  const discard = tproto.discard;
  const iterate = tproto.iterate;
  tproto.discard = function (this: TransportInternals): void {
    discarded.add(this);
    discard.call(this);
  };
  tproto.iterate = async function* (this: TransportInternals): AsyncGenerator<Uint8Array> {
    const inner = iterate.call(this);
    for (;;) {
      const r = await inner.next();
      if (r.done || discarded.has(this)) return;
      sourceOf.set(r.value, this);
      yield r.value;
    }
  };
  const parse = pproto.parse;
  pproto.parse = function (this: ParserInternals, buf: Uint8Array): void {
    if (isLeftover(buf)) return;
    parse.call(this, buf);
  };
  patched.add(tproto);
  patched.add(pproto);
  return true;
}
