// Checkpoint bytes pushed to the followers as the learner stores them: the object chunks that CheckpointStore.put
// publishes into JetStream (object-chunks.ts, subject `$O.<bucket>.C.push.<nuid>`) carry headers naming the checkpoint,
// and a store that watch()es subscribes to those subjects over core NATS. So the learner sends the bytes once, the
// server stores them and hands them to the subscribed followers as they arrive, and the followers hold them
// before the announcement (published only after the object is committed) reaches them.
//
// A push is only a faster path: bytes are used only when their sha256 (Node's, computed as they arrive) equals
// the announced digest, and a follower that missed a push (not yet subscribed, a dropped message, a slow consumer)
// fetches the checkpoint from the store as before. Chunks without these headers (objects written by anyone else,
// e.g. nats.js's own object store) are ignored.
//
// Headers of each chunk: version, digest, total size, offset, and on the first chunk the stored metadata (JSON).
// Chunks of one object arrive in order (one publisher connection, one subject).
import { createHash, type Hash } from 'node:crypto';
import { headers, type MsgHdrs, type NatsConnection, type Subscription } from 'nats';
import { trace, traceEnabled } from '../log/trace.ts';
import { CheckpointBuffers } from './checkpoint-buffers.ts';
import { isScratch, receiveInScratch, releaseScratch } from './nats-payload.ts';

const H_VERSION = 'Ckpt-Version';
const H_DIGEST = 'Ckpt-Digest';
const H_SIZE = 'Ckpt-Size';
const H_OFFSET = 'Ckpt-Offset';
const H_META = 'Ckpt-Meta';
const H_PAD = 'Ckpt-Pad';

/** Largest checkpoint a follower assembles from pushes (larger ones come from the store). */
const MAX_PUSH_BYTES = 2 ** 31 - 1;
/** Pushes assembled at once; an older one is dropped for a newer. */
const MAX_IN_PROGRESS = 2;

/**
 * The first token of the id of chunks written for followers (object-chunks.ts: `$O.<bucket>.C.push.<hex>`): the NATS
 * permissions let every role subscribe to these and to no other object's chunks (nats-permissions.ts).
 */
export const PUSH_ID_PREFIX = 'push.';
/** Every bucket's pushed chunks: what the NATS permissions let any role subscribe to. */
export const PUSHED_CHUNKS = `$O.*.C.${PUSH_ID_PREFIX}>`;

/** The subjects a bucket's pushed chunks are published on (object-chunks.ts): what followers subscribe to. */
export function chunkSubjects(bucket: string): string {
  return `$O.${bucket}.C.${PUSH_ID_PREFIX}>`;
}

export interface PushedCheckpoint {
  version: number;
  /** "sha256:<hex>", checked against the bytes. */
  digest: string;
  bytes: Uint8Array;
  /** The metadata the learner stored with the checkpoint (JSON object). */
  meta: Record<string, unknown>;
  receivedUnixMs: number;
}

/**
 * A pushed checkpoint handed to a consumer that gives it back: `release()` says that no view of `bytes` is used any
 * more; once the receiver has moved on too, the buffer is detached and reused for a later checkpoint (checkpoint-
 * buffers.ts). Calling it twice throws.
 */
export interface PushedLease extends PushedCheckpoint {
  release(): void;
}

/** Set by the server on a message it answers a direct get with (the stream it came from), never on a publish. */
export const STREAM_HEADER = 'Nats-Stream';

/** The headers of the chunk at `offset` of checkpoint `version` (`size` bytes, sha256 `digest`). */
export function pushHeaders(version: number, size: number, offset: number, digest: string, metaJson: string): MsgHdrs {
  const h = headers();
  h.set(H_VERSION, String(version));
  h.set(H_DIGEST, digest);
  h.set(H_SIZE, String(size));
  h.set(H_OFFSET, String(offset));
  if (offset === 0) h.set(H_META, metaJson);
  // Padded so the header block is a multiple of 8 bytes: a receiver assembles a large message in one buffer that
  // starts with the headers (nats-payload.ts), so the payload, and the safetensors data section in it (8-aligned
  // in the file), land aligned, and a checkpoint in one chunk decodes into views of it (decodeCheckpoint `views`).
  const len = Buffer.byteLength(String(h)) + 2 + H_PAD.length + 2; // "\r\n" name ": " value
  h.set(H_PAD, 'x'.repeat(((8 - (len % 8)) % 8) || 8));
  return h;
}

interface Assembly {
  version: number;
  digest: string;
  buf: Uint8Array;
  next: number;
  hash: Hash;
  meta: Record<string, unknown>;
}

/**
 * Whether a chunk, from its first bytes (nats-payload.ts receiveInScratch), is a whole checkpoint (kept as received,
 * in a buffer of its own) rather than a part that is copied into the checkpoint's buffer (assembled in the
 * connection's scratch buffer). Headers not all there: a buffer of its own, as any message.
 */
function wholeCheckpoint(head: Uint8Array, hdrLen: number, payloadLen: number): boolean {
  if (hdrLen < 0 || head.length < hdrLen) return true;
  const h = Buffer.from(head.buffer, head.byteOffset, hdrLen).toString('latin1');
  // the first socket read of a pushed chunk (bench/broadcast-timeline.ts: when its bytes start arriving)
  if (traceEnabled()) trace('push.recv', { version: Number(/\r\nCkpt-Version: *([0-9]{1,16})\r\n/i.exec(h)?.[1] ?? -1) });
  const m = /\r\nCkpt-Size: *([0-9]{1,16})\r\n/i.exec(h);
  return !m || Number(m[1]) === payloadLen;
}

function intHeader(h: MsgHdrs, key: string): number | undefined {
  const s = h.get(key);
  if (!/^(0|[1-9][0-9]*)$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** A follower's subscription to a bucket's chunks: keeps the newest complete, verified checkpoint. */
export class CheckpointPushReceiver {
  private readonly sub: Subscription;
  private readonly assembling = new Map<string, Assembly>();
  private held: PushedCheckpoint | undefined;
  private readonly waiters = new Map<string, Array<() => void>>();
  /** The buffers checkpoints are received into (one held per checkpoint in `assembling` and `held`). */
  readonly buffers = new CheckpointBuffers();

  constructor(private readonly nc: NatsConnection, bucket: string) {
    this.sub = nc.subscribe(chunkSubjects(bucket), {
      callback: (err, msg) => {
        // a whole checkpoint's message is assembled in a pool buffer: back to the pool when it is not kept
        if (!err && msg.headers && this.onChunk(msg.headers, msg.data)) return;
        if (msg && this.buffers.owns(msg.data.buffer)) this.buffers.release(msg.data.buffer);
      },
    });
    // the parts of a checkpoint larger than one message are assembled in the connection's scratch buffer and copied
    // into the checkpoint's (onChunk, synchronously): one copy into fresh memory per byte, not two; a checkpoint in
    // one message is assembled in a buffer of the pool
    receiveInScratch(nc, this.sub, wholeCheckpoint, (size) => this.buffers.alloc(size));
  }

  /** Handles a chunk; true when its buffer was kept (a whole checkpoint, as received). */
  private onChunk(h: MsgHdrs, data: Uint8Array): boolean {
    const version = intHeader(h, H_VERSION);
    const size = intHeader(h, H_SIZE);
    const offset = intHeader(h, H_OFFSET);
    const digest = h.get(H_DIGEST);
    if (version === undefined || size === undefined || offset === undefined || !/^sha256:[0-9a-f]{64}$/.test(digest) || size > MAX_PUSH_BYTES) return false;
    // a stored chunk replayed by a direct get whose reply subject is the push subject (a reader may pick it: the
    // answer reaches its own account's followers) carries the stream's headers; the learner's push never does, and
    // a replayed first chunk would restart the assembly of the one being pushed (review23f)
    if (h.has(STREAM_HEADER)) return false;
    if (this.held && version <= this.held.version) return false;
    let a = this.assembling.get(digest);
    if (offset === 0) {
      trace('push.first', { version });
      let meta: Record<string, unknown> = {};
      try {
        const parsed: unknown = JSON.parse(h.get(H_META) || '{}');
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) meta = parsed as Record<string, unknown>;
      } catch {
        /* meta is advisory */
      }
      if (data.length === size) {
        // the whole checkpoint in one chunk: held as nats.js delivered it (a buffer of its own), no assembly copy;
        // copied only if it lies in the connection's scratch buffer, which the next message overwrites
        const own = isScratch(data) ? Uint8Array.prototype.slice.call(data) : data;
        this.discard(digest);
        this.complete({ version, digest, buf: own, next: size, hash: createHash('sha256').update(own), meta });
        return own === data;
      }
      // a buffer of the pool at offset 0, so the data section is aligned
      this.discard(digest);
      a = { version, digest, buf: new Uint8Array(this.buffers.alloc(size), 0, size), next: 0, hash: createHash('sha256'), meta };
      this.assembling.set(digest, a);
      for (const [d, other] of this.assembling) if (this.assembling.size > MAX_IN_PROGRESS && other !== a) this.drop(d);
    }
    // a chunk out of order means one was lost: this push is abandoned (the store has the checkpoint)
    if (!a || a.version !== version || a.buf.length !== size || offset !== a.next || offset + data.length > size) {
      if (a) this.drop(digest);
      return false;
    }
    a.buf.set(data, offset);
    a.hash.update(data);
    a.next += data.length;
    if (a.next < size) return false;
    this.assembling.delete(digest);
    this.complete(a);
    return false;
  }

  /** A push fully received (and hashed): held when its sha256 is the digest its headers name. */
  private complete(a: Assembly): void {
    const { version, digest } = a;
    if (`sha256:${a.hash.digest('hex')}` !== digest) {
      this.buffers.release(a.buf.buffer);
      return this.wake(digest);
    }
    // the receiver's hold on the previous one ends (a consumer that took it keeps its own)
    if (this.held) this.buffers.release(this.held.bytes.buffer);
    this.held = { version, digest, bytes: a.buf, meta: a.meta, receivedUnixMs: Date.now() };
    trace('push.held', { version });
    for (const [d, other] of this.assembling) if (other.version <= version) this.drop(d);
    this.wake(digest);
  }

  /** Abandons the assembly of `digest` (if any) and wakes whoever waits for it. */
  private drop(digest: string): void {
    this.discard(digest);
    this.wake(digest);
  }

  /** Forgets the assembly of `digest` (if any; a push of the same checkpoint starting again): its buffer goes back. */
  private discard(digest: string): void {
    const a = this.assembling.get(digest);
    if (a) this.buffers.release(a.buf.buffer);
    this.assembling.delete(digest);
  }

  private wake(digest: string): void {
    for (const w of this.waiters.get(digest) ?? []) w();
    this.waiters.delete(digest);
  }

  /**
   * The pushed checkpoint `version` with `digest`, verified; when that push is still arriving, waits for it up to
   * `waitMs`. Undefined when it was not received (the caller fetches it from the store). Its bytes stay valid until
   * the lease is released, whatever the receiver receives meanwhile: a consumer that never calls release() keeps
   * them for good (their buffer is then never reused).
   */
  async take(version: number, digest: string, waitMs: number): Promise<PushedLease | undefined> {
    const a = this.assembling.get(digest);
    if (a && a.version === version) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, waitMs);
        const list = this.waiters.get(digest) ?? [];
        list.push(() => { clearTimeout(t); resolve(); });
        this.waiters.set(digest, list);
      });
    }
    const held = this.held;
    if (!held || held.version !== version || held.digest !== digest) return undefined;
    const ab = held.bytes.buffer;
    const pooled = this.buffers.owns(ab);
    if (pooled) this.buffers.acquire(ab);
    let released = false;
    return {
      ...held,
      release: () => {
        if (released) throw new Error(`checkpoint v${version}: released twice`);
        released = true;
        if (pooled) this.buffers.release(ab);
      },
    };
  }

  /** True when a verified push with this digest is held (it backs its announcement as the stored object does). */
  holds(version: number, digest: string): boolean {
    return this.held?.version === version && this.held.digest === digest;
  }

  stop(): void {
    releaseScratch(this.nc, this.sub);
    this.sub.unsubscribe();
    for (const d of [...this.waiters.keys()]) this.wake(d);
    for (const a of this.assembling.values()) this.buffers.release(a.buf.buffer);
    this.assembling.clear();
    if (this.held) this.buffers.release(this.held.bytes.buffer);
    this.held = undefined;
    this.buffers.close();
  }
}
