// nats.js's handling of large messages, both ways, without its copies into fresh memory.
//
// Why: on this kind of VM (Firecracker, free-page reporting) the first write to freshly allocated memory costs ~3 ms
// per MB in page faults, against ~0.02 ms to rewrite memory already touched (docs/performance-history/broadcast.md),
// so every copy into a new buffer of a checkpoint's size costs more than hashing it.
//
// Receiving. nats.js 2.x (parser.js) parses each socket read (up to 64 KiB) as it comes; a message longer than what is
// left of the read is assembled in a DenoBuffer that starts as a copy of the first part and grows to
// 2 * capacity + n on every read that does not fit (denobuffer.js `_grow`). Here that buffer is replaced, right after
// the parser starts it, by one holding the same bytes that is either
// - of the message's full size (presizePayloads, every message): one allocation and one copy, the bytes handed to the
//   subscriber are the same; or
// - a scratch buffer of the connection, reused message after message (receiveInScratch, one subscription's messages
//   the subscriber copies out at once: the chunks of a checkpoint larger than one message, which are copied into
//   the checkpoint's buffer): touched memory, so no page faults, and no allocation per message.
//
// Sending. nats.js queues a message's parts (protocol line, headers, payload) and, a microtask later, concatenates
// everything queued into a new buffer that it writes to the socket (protocol.js `flushPending`, databuffer.js
// `drain`). When what is queued holds a part of LARGE_WRITE bytes or more, the parts are written as they are, in one
// corked write (writev) instead (sendLargeUncopied): the payload is not copied. The caller must not change a large
// payload after publishing it until the write is done; the project's publishers of large payloads (checkpoint and
// object-store chunks) publish bytes they never change.
//
// nats.js does not export its Parser or ProtocolHandler, so the patches are applied to the prototypes of the ones a
// connection holds (`nc.protocol.parser`, `nc.protocol`: the same classes for every connection of the process). The
// functions return false and change nothing when those internals are not where nats.js 2.29 keeps them
// (test/transport/nats-payload.test.ts fails then, so an upgrade is noticed).
import type { NatsConnection, Subscription } from 'nats';
import { noteReceived, v8Gc } from './read-memory.ts';

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
  /** The protocol handler (ProtocolHandler) that receives the parsed messages, synchronously. */
  dispatcher?: object;
  /** The payload being assembled (set only while a message spans socket reads). */
  msgBuf?: PayloadBuffer;
  /** The current message's arguments: `size` is its length in bytes, headers included; `hdr` the headers' (-1: none). */
  ma?: { size: number; sid: number; hdr: number };
}

/** The parts of nats.js's DataBuffer (the outbound queue) used here. */
interface OutboundInternals {
  buffers: Uint8Array[];
  byteLength: number;
  reset(): void;
}

interface ProtocolInternals {
  parser?: unknown;
  flushPending(): void;
  infoReceived?: boolean;
  connected?: boolean;
  outbound?: OutboundInternals;
  transport?: { send(frame: Uint8Array): void; close?(err?: Error): Promise<void>; socket?: { cork(): void; uncork(): void } };
}

/**
 * A subscription whose spanning messages are assembled in the connection's scratch buffer. `whole(head)` is asked
 * with the message's first bytes (headers first) when it starts: true gives the message a buffer of its own
 * instead (one the subscriber keeps).
 */
interface ScratchSub {
  whole: (head: Uint8Array, hdrLen: number, payloadLen: number) => boolean;
  /** The buffer a whole message (of `size` bytes, headers included) is assembled in; default a new one. */
  alloc: ((size: number) => ArrayBuffer) | undefined;
}
interface ScratchState {
  subs: Map<number, ScratchSub>;
  buf?: ArrayBuffer;
}
/** Per protocol handler (one per connection; it outlives reconnects, and subscriptions keep their sid across them). */
const scratch = new WeakMap<object, ScratchState>();
/** Scratch buffers handed out: isScratch() tells a subscriber that it must copy the bytes out. */
const scratchBuffers = new WeakSet<ArrayBuffer>();

const patched = new WeakSet<object>();

/** A part at least this large is written as it is (not concatenated into a new buffer). */
export const LARGE_WRITE = 256 * 1024;

function protocolOf(nc: NatsConnection): ProtocolInternals | undefined {
  const protocol = (nc as unknown as { protocol?: unknown }).protocol;
  if (!protocol || typeof protocol !== 'object' || typeof (protocol as ProtocolInternals).flushPending !== 'function') return undefined;
  return protocol as ProtocolInternals;
}

function parserOf(nc: NatsConnection): ParserInternals | undefined {
  const parser = protocolOf(nc)?.parser;
  if (!parser || typeof parser !== 'object' || typeof (parser as ParserInternals).parse !== 'function') return undefined;
  return parser as ParserInternals;
}

/** The buffer a spanning message is assembled in (the scratch buffer, or one of its size), holding its first part. */
function replaceBuffer(this: ParserInternals, mb: PayloadBuffer, size: number): void {
  const ctor = mb.constructor as PayloadBufferCtor;
  const st = this.dispatcher ? scratch.get(this.dispatcher) : undefined;
  const sub = st?.subs.get(this.ma!.sid);
  let ab: ArrayBuffer;
  if (st && sub && !sub.whole(mb.bytes({ copy: false }), this.ma!.hdr, size - Math.max(0, this.ma!.hdr))) {
    if (!st.buf || st.buf.byteLength < size) {
      st.buf = new ArrayBuffer(size);
      scratchBuffers.add(st.buf);
    }
    ab = st.buf;
  } else {
    ab = sub?.alloc?.(size) ?? new ArrayBuffer(size);
  }
  const full = new ctor(ab);
  full.reset();
  full.write(mb.bytes({ copy: false }));
  this.msgBuf = full;
}

/**
 * A parse error leaves a connection that nothing reads any more: nats.js's reader loop logs "reader closed" and ends,
 * but keeps the socket, so the connection stays "connected", answers no request and misses every message until its
 * PINGs go unanswered (maxPingOut of them, minutes with nats.js's defaults). Round 19's fault c (a NATS link cut for
 * 20 s, with 5 s PINGs) showed such errors after the reconnect in the learner and the orchestrator (`parse error [0]:
 * {"type":"io.nats.jetstream.api.v1.stream_msg_get_response",...`, and replies that were not JSON): the bytes being
 * parsed were not the stream the parser had been following. Here the connection's transport is closed with the
 * error, so nats.js reconnects at once with a new parser, and the requests in flight fail at the drop (nats-disconnect.ts).
 */
function dropAfterParseError(parser: ParserInternals, e: unknown): void {
  const transport = (parser.dispatcher as ProtocolInternals | undefined)?.transport;
  const err = e instanceof Error ? e : new Error(String(e));
  transport?.close?.(err).catch(() => {});
}

/**
 * Makes every nats.js connection of this process assemble a message that spans socket reads in one buffer of the
 * message's size (or the connection's scratch buffer, receiveInScratch), and count the bytes each socket read brings for
 * read-memory.ts's scavenge (the parser is where every read passes). Idempotent; true when the patch is in place.
 */
export function presizePayloads(nc: NatsConnection): boolean {
  const parser = parserOf(nc);
  if (!parser) return false;
  const proto = Object.getPrototypeOf(parser) as ParserInternals;
  if (patched.has(proto)) return true;
  if (!Object.prototype.hasOwnProperty.call(proto, 'parse')) return false;
  const parse = proto.parse;
  // had now (it makes a context, ~1 ms), not when the first large message arrives
  v8Gc();
  proto.parse = function (this: ParserInternals, buf: Uint8Array): void {
    // each socket read is garbage once parsed (its bytes copied into the message's buffer, or a small message's view
    // kept): a scavenge every MiB read hands the dead ones' memory back for the next reads (read-memory.ts)
    noteReceived(buf.length);
    try {
      parse.call(this, buf);
    } catch (e) {
      dropAfterParseError(this, e);
      throw e;
    }
    const mb = this.msgBuf;
    const size = this.ma?.size;
    if (mb === undefined || size === undefined || mb.capacity >= size) return;
    replaceBuffer.call(this, mb, size);
  };
  patched.add(proto);
  return true;
}

/**
 * Messages of `sub` (a subscription with a callback, which nats.js calls synchronously as each message is parsed)
 * that span socket reads are assembled in a scratch buffer of the connection, reused for the next such message:
 * their `data` is valid only until the callback returns (isScratch tells). `whole(head, hdrLen, payloadLen)` is asked
 * with the first bytes of each (headers first, when `hdrLen` >= 0 and they are all there): true gives that message a
 * buffer of its own, as every other message gets: `alloc(size)` when given (e.g. a pool's buffer of at least `size`
 * bytes; the message is its first `size` bytes), else a new one. True when in place (presizePayloads applied); stop
 * with releaseScratch.
 */
export function receiveInScratch(nc: NatsConnection, sub: Subscription, whole: ScratchSub['whole'], alloc?: (size: number) => ArrayBuffer): boolean {
  const protocol = protocolOf(nc);
  if (!protocol || !presizePayloads(nc)) return false;
  let st = scratch.get(protocol);
  if (!st) scratch.set(protocol, (st = { subs: new Map() }));
  st.subs.set(sub.getID(), { whole, alloc });
  return true;
}

/** Undoes receiveInScratch for `sub`; the scratch buffer goes when no subscription of the connection uses it. */
export function releaseScratch(nc: NatsConnection, sub: Subscription): void {
  const protocol = protocolOf(nc);
  const st = protocol ? scratch.get(protocol) : undefined;
  if (!st) return;
  st.subs.delete(sub.getID());
  if (st.subs.size === 0) scratch.delete(protocol!);
}

/** True when `data` lies in a connection's scratch buffer: the subscriber must copy it before its callback returns. */
export function isScratch(data: Uint8Array): boolean {
  return data.buffer instanceof ArrayBuffer && scratchBuffers.has(data.buffer);
}

/**
 * Makes every nats.js connection of this process write what it has queued without concatenating it into a new
 * buffer when a part of LARGE_WRITE bytes or more is queued (above). Idempotent; true when the patch is in place.
 */
export function sendLargeUncopied(nc: NatsConnection): boolean {
  const protocol = protocolOf(nc);
  if (!protocol) return false;
  const proto = Object.getPrototypeOf(protocol) as ProtocolInternals;
  if (patched.has(proto)) return true;
  if (!Object.prototype.hasOwnProperty.call(proto, 'flushPending')) return false;
  const out = protocol.outbound;
  if (!out || !Array.isArray(out.buffers) || typeof out.byteLength !== 'number' || typeof out.reset !== 'function') return false;
  const flushPending = proto.flushPending;
  proto.flushPending = function (this: ProtocolInternals): void {
    const q = this.outbound;
    const t = this.transport;
    const sock = t?.socket;
    if (!this.infoReceived || !this.connected || !q || !t || !sock || q.byteLength < LARGE_WRITE || q.buffers.length < 2 || !q.buffers.some((b) => b.length >= LARGE_WRITE)) {
      return flushPending.call(this);
    }
    const parts = q.buffers.slice();
    q.reset();
    // one writev for all parts; the small ones (protocol lines, headers) are concatenated by the kernel's copy only
    sock.cork();
    for (const p of parts) t.send(p);
    sock.uncork();
  };
  patched.add(proto);
  return true;
}
