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
//
// Nor does a replaced transport's end drop the connection (round 21). A dial that times out (5 s: no INFO from the
// server, as during a cut) is abandoned, but nats.js's Node transport ignores close() until it has connected, so its
// socket stays open; when the link is back, its TCP handshake and the server's INFO get through and it connects
// unused; the server closes it ~3 s later (no CONNECT within its authorization timeout), and that end resolved the
// transport's closed(), to which nats.js had attached "the connection dropped" at its dial: the connection in use
// then, healthy, was dropped and dialled again. Round 20's fault c runs saw it in every role, 3-4 s after the
// recovery (the learner's `publishing checkpoint ... failed (attempt 1)`). Now a replaced transport's socket is
// destroyed when it is replaced, or when it connects after that, and its end resolves nothing.
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

interface TransportInternals {
  discard(): void;
  iterate(): AsyncGenerator<Uint8Array>;
  connect(hp: unknown, options: unknown): Promise<void>;
  _closed(err?: Error, internal?: boolean): Promise<void>;
  socket?: Socket;
  done: boolean;
}
interface ParserInternals {
  parse(buf: Uint8Array): void;
}

/** Transports a dial has replaced. */
const discarded = new WeakSet<object>();
/** The transport each read handed to the reader loop came from (reads are Buffers: objects). */
const sourceOf = new WeakMap<Uint8Array, object>();

/** True when `buf` was read by a connection a dial has since replaced: the current parser must not see it. */
export function isLeftover(buf: Uint8Array): boolean {
  const t = sourceOf.get(buf);
  return t !== undefined && discarded.has(t);
}

/**
 * Patches nats.js's Node transport and parser classes (nats 2.29 keeps them in lib/src/node_transport.js and
 * lib/nats-base-client/parser.js; the package has no exports map, so they can be required). It must happen before any
 * connection dials: a dial makes the transport's iterator at once, so a patch made after connect() would leave every
 * process's first connection (the only one most roles ever make) unguarded. False, and nothing changed, where the
 * classes are not what 2.29 has (test/transport/nats-reader.test.ts fails then, so an upgrade is noticed).
 */
function install(): boolean {
  let tproto: TransportInternals;
  let pproto: ParserInternals;
  try {
    const require = createRequire(import.meta.url);
    tproto = (require('nats/lib/src/node_transport.js') as { NodeTransport: { prototype: TransportInternals } }).NodeTransport.prototype;
    pproto = (require('nats/lib/nats-base-client/parser.js') as { Parser: { prototype: ParserInternals } }).Parser.prototype;
  } catch {
    return false;
  }
  if ([tproto.discard, tproto.iterate, tproto.connect, tproto._closed, pproto.parse].some((f) => typeof f !== 'function')) return false;
  const { discard, iterate, connect, _closed: closed } = tproto;
  // a replaced transport's socket (an abandoned dial's, still connecting) is destroyed, and its end signals nothing
  const destroy = (t: TransportInternals) => {
    t.socket?.removeAllListeners();
    t.socket?.destroy();
    t.socket = undefined;
    t.done = true;
  };
  tproto.discard = function (this: TransportInternals): void {
    discarded.add(this);
    discard.call(this);
    destroy(this);
  };
  tproto.connect = async function (this: TransportInternals, hp: unknown, options: unknown): Promise<void> {
    await connect.call(this, hp, options);
    if (discarded.has(this)) destroy(this); // connected after its dial was given up and replaced
  };
  tproto._closed = function (this: TransportInternals, err?: Error, internal?: boolean): Promise<void> {
    if (!discarded.has(this)) return closed.call(this, err, internal);
    destroy(this);
    return Promise.resolve();
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
  return true;
}

/**
 * Whether every nats.js connection of this process drops the unparsed reads of a connection it replaced, and ignores
 * that connection's end (above):
 * installed once, when this module is first imported (lib/transport/nats.ts imports it before it connects anything).
 */
export const leftoverReadsDropped: boolean = install();
