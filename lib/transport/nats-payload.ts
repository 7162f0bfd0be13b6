// Sizes nats.js's buffer for a message payload once, from the size the server announces, instead of growing it by
// doubling.
//
// Why: nats.js 2.x (parser.js) parses each socket read (up to 64 KiB) as it comes; a message longer than what is
// left of the read is assembled in a DenoBuffer that starts as a copy of the first part and grows to
// 2 * capacity + n on every read that does not fit (denobuffer.js `_grow`). A 1 MiB checkpoint chunk therefore
// allocates ~3.6 MiB of zero-filled memory and copies ~1.7 MiB before the subscriber sees it, and on this kind of
// VM fresh memory costs ~3 ms per MB in page faults (docs/performance.md "Checkpoint broadcast"). Here the buffer
// is replaced, right after the parser starts it, by one of the message's full size holding the same bytes: one
// allocation and one copy per message, the bytes handed to the subscriber are the same.
//
// nats.js does not export its Parser, so the patch is applied to the prototype of the parser a connection holds
// (`nc.protocol.parser`, the same class for every connection of the process). presizePayloads() returns false and
// changes nothing when those internals are not where nats.js 2.29 keeps them (test/transport/nats-payload.test.ts
// fails then, so an upgrade is noticed).
import type { NatsConnection } from 'nats';

/** The parts of nats.js's DenoBuffer used here (public methods of that class). */
interface PayloadBuffer {
  readonly length: number;
  readonly capacity: number;
  bytes(opts: { copy: boolean }): Uint8Array;
  reset(): void;
  write(p: Uint8Array): number;
}
type PayloadBufferCtor = new (ab: ArrayBuffer) => PayloadBuffer;

interface ParserInternals {
  parse(buf: Uint8Array): void;
  /** The payload being assembled (set only while a message spans socket reads). */
  msgBuf?: PayloadBuffer;
  /** The current message's arguments: `size` is its length in bytes, headers included. */
  ma?: { size: number };
}

const patched = new WeakSet<object>();

function parserOf(nc: NatsConnection): ParserInternals | undefined {
  const parser = (nc as unknown as { protocol?: { parser?: unknown } }).protocol?.parser;
  if (!parser || typeof parser !== 'object' || typeof (parser as ParserInternals).parse !== 'function') return undefined;
  return parser as ParserInternals;
}

/**
 * Makes every nats.js connection of this process assemble a message that spans socket reads in one buffer of the
 * message's size. Idempotent; true when the patch is in place.
 */
export function presizePayloads(nc: NatsConnection): boolean {
  const parser = parserOf(nc);
  if (!parser) return false;
  const proto = Object.getPrototypeOf(parser) as ParserInternals;
  if (patched.has(proto)) return true;
  if (!Object.prototype.hasOwnProperty.call(proto, 'parse')) return false;
  const parse = proto.parse;
  proto.parse = function (this: ParserInternals, buf: Uint8Array): void {
    parse.call(this, buf);
    const mb = this.msgBuf;
    const size = this.ma?.size;
    if (mb === undefined || size === undefined || mb.capacity >= size) return;
    const full = new (mb.constructor as PayloadBufferCtor)(new ArrayBuffer(size));
    full.reset();
    full.write(mb.bytes({ copy: false }));
    this.msgBuf = full;
  };
  patched.add(proto);
  return true;
}
