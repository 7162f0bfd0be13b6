// Object bytes in a JetStream object-store bucket, written and read here rather than by nats.js's ObjectStore
// put/get, in the same layout (so its API, `nats object` and the tests that tamper with objects still read them):
//   stream OBJ_<bucket>; chunks on $O.<bucket>.C.<nuid>; the object's info (JSON) on $O.<bucket>.M.<base64url name>
// Why: nats.js hashes every byte with a JavaScript SHA-256 on both sides and writes 128 KiB chunks; here the caller
// hashes once with Node's crypto, chunks are as large as the server accepts, and a window of them is in flight at once.
import { randomBytes } from 'node:crypto';
import { PUSH_ID_PREFIX } from './checkpoint-push.ts';
import { NatsDisconnectedError } from './nats-disconnect.ts';
import { directGet, DIRECT_GET_TIMEOUT_MS } from './direct-get.ts';
import { objectDigest } from './object-digest.ts';
import { headers, JSONCodec, type JetStreamClient, type JetStreamManager, type MsgHdrs, type NatsConnection, type ObjectInfo } from 'nats';

const jc = JSONCodec();

/** The slowest a checkpoint reader's link is expected to deliver a chunk: 512 KiB/s (an 8 MiB chunk: 16 s). */
export const MIN_READ_BYTES_PER_MS = 512 * 1024 / 1000;

/**
 * Chunks awaiting their acknowledgement at once: 8, and fewer for chunks above 2 MiB so that at most 16 MiB are in
 * flight (the server holds what a slow follower has not read, up to its max_pending, 64 MiB by default).
 */
const WINDOW = 8;
const WINDOW_BYTES = 16 * 1024 * 1024;
const PUBLISH_TIMEOUT_MS = 30_000;
/** JetStream's error code for a stream that holds no message on the subject asked for. */
const NO_MESSAGE_FOUND = 10037;

/** Record reads and purges at a time in dropDeletedRecords (as object-listing.ts reads records). */
const DROP_CONCURRENCY = 32;

/** Whether a record's bytes are an object's info marked deleted (a record that is not JSON is not one). */
function isDeletedRecord(data: Uint8Array): boolean {
  try {
    return (jc.decode(data) as { deleted?: unknown } | null)?.deleted === true;
  } catch {
    return false;
  }
}

/** What commit() stored: the object's info as published, and its stream sequence (what nats.js calls its revision). */
export interface CommittedRecord {
  info: { name: string; nuid: string } & Record<string, unknown>;
  seq: number;
}

/** The fields of an object's info that the checkpoint store reads (commit() writes them all). */
export type StoredObjectInfo = Pick<ObjectInfo, 'name' | 'nuid' | 'size' | 'chunks' | 'deleted' | 'metadata' | 'digest'>;

/**
 * A read that got fewer chunks than the object's info announces while the connection stayed up, and the stream
 * holds only `held` of them: the object is truncated (a chunk deleted or lost), not unavailable for now.
 */
export class ObjectTruncatedError extends Error {
  constructor(
    readonly subject: string,
    readonly held: number,
    readonly chunks: number,
  ) {
    super(`its chunks ${subject} hold ${held} of the ${chunks} chunks its info announces`);
    this.name = 'ObjectTruncatedError';
  }
}

export class ObjectChunks {
  readonly stream: string;

  constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    readonly bucket: string,
  ) {
    this.stream = `OBJ_${bucket}`;
  }

  private chunkSubject(nuid: string): string {
    return `$O.${this.bucket}.C.${nuid}`;
  }

  private metaSubject(name: string): string {
    return `$O.${this.bucket}.M.${Buffer.from(name).toString('base64url')}${'='.repeat((3 - (Buffer.byteLength(name) % 3)) % 3)}`;
  }

  /** Largest chunk: the server's max_payload less room for headers, at most 8 MiB. */
  private chunkSize(): number {
    const max = this.nc.info?.max_payload ?? 1024 * 1024;
    return Math.max(1024, Math.min(8 * 1024 * 1024, max - 4096));
  }

  /**
   * Writes the bytes as chunks under a fresh id, a window of them awaiting acknowledgement at once; returns the id.
   * `chunkHeaders(offset)` gives each chunk's headers (checkpoint-push.ts: subscribed followers assemble the chunks
   * as they are stored); such chunks get an id starting `push.`, the only chunks the NATS permissions let followers
   * subscribe to (nats.js reads the object all the same: it subscribes to `$O.<bucket>.C.<id>`). On a failure the
   * chunks written so far are purged.
   */
  async writeChunks(bytes: Uint8Array, chunkHeaders?: (offset: number) => MsgHdrs): Promise<{ nuid: string; chunks: number }> {
    const nuid = (chunkHeaders ? PUSH_ID_PREFIX : '') + randomBytes(16).toString('hex');
    const subject = this.chunkSubject(nuid);
    const size = this.chunkSize();
    const count = Math.ceil(bytes.length / size);
    // a window of chunks in flight: all of a 50 MB checkpoint at once outlasts the acknowledgement timeout on a
    // loaded machine
    let nextChunk = 0;
    const writer = async () => {
      for (let i = nextChunk++; i < count; i = nextChunk++) {
        const h = chunkHeaders?.(i * size);
        await this.js.publish(subject, bytes.subarray(i * size, Math.min(bytes.length, (i + 1) * size)), { timeout: PUBLISH_TIMEOUT_MS, ...(h ? { headers: h } : {}) });
      }
    };
    const window = Math.max(2, Math.min(WINDOW, Math.floor(WINDOW_BYTES / size)));
    const settled = await Promise.allSettled(Array.from({ length: Math.min(window, count) }, writer));
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      // the write's own error is what the caller needs (e.g. the connection dropped: retry); chunks a failed purge
      // leaves are never committed, so never read
      await this.purgeChunks(nuid).catch(() => {});
      throw failed.reason;
    }
    return { nuid, chunks: count };
  }

  /**
   * The info object `name`'s last commit published (what nats.js's ObjectStore.info reads), null when none was.
   * Unlike nats.js's, a missing stream is not "no such object": its error goes to the caller (a lost store,
   * store-loss.ts isStoreLost). nats.js reads both as null, and a put then wrote its chunks into the void: where
   * followers watch the chunk subjects (checkpoint pushes) a publish there is answered by nobody, not refused
   * (no 503), so the lost store showed only at the chunks' 30 s acknowledgement timeout (fault e).
   */
  async info(name: string): Promise<StoredObjectInfo | null> {
    try {
      const m = await this.jsm.streams.getMessage(this.stream, { last_by_subj: this.metaSubject(name) });
      return jc.decode(m.data) as StoredObjectInfo;
    } catch (e) {
      if ((e as { api_error?: { err_code?: number } }).api_error?.err_code === NO_MESSAGE_FOUND) return null;
      throw e;
    }
  }

  /**
   * Makes chunks `nuid` the object `name` by publishing its info (a subject roll-up, as nats.js does). `sha256`
   * is the raw digest of the bytes, recorded as nats.js does (object-digest.ts).
   */
  async commit(
    name: string,
    written: { nuid: string; chunks: number },
    size: number,
    sha256: Uint8Array,
    fields: { description: string; metadata: Record<string, string> },
  ): Promise<CommittedRecord> {
    const info = {
      name,
      description: fields.description,
      metadata: fields.metadata,
      options: { max_chunk_size: this.chunkSize() },
      bucket: this.bucket,
      nuid: written.nuid,
      size,
      chunks: written.chunks,
      mtime: new Date().toISOString(),
      digest: objectDigest(sha256),
      deleted: false,
    };
    const h = headers();
    h.set('Nats-Rollup', 'sub');
    const ack = await this.js.publish(this.metaSubject(name), jc.encode(info), { headers: h });
    return { info, seq: ack.seq };
  }

  /**
   * Deletes the object a commit() of this writer recorded, without reading its record back: that read is one
   * JetStream request per deleted version (round 28). Only for a record the caller knows to be the one stored
   * (CheckpointStore.prune: committed by its own store since the connection's last drop). See deleteObject.
   */
  async deleteCommitted(record: CommittedRecord): Promise<void> {
    await this.deleteObject(record.info.name, record.info.nuid);
  }

  /**
   * Deletes object `name` as it is stored: its record read (what nats.js's `ObjectStore.delete` reads), then deleted
   * as deleteObject does. Its chunks are purged only where the record names `name`: a record replayed under the name
   * (docs/security.md) names another object's chunks, which nats.js's delete purged (round 28). Nothing stored: no-op.
   */
  async delete(name: string): Promise<void> {
    const info = await this.info(name);
    if (!info) return;
    // a "deleted" record (written by an earlier version of this code or by nats.js) names no chunks
    await this.deleteObject(name, info.name === name && !info.deleted ? info.nuid : undefined);
  }

  /**
   * Deletes object `name`: its record subject purged, then its chunks `nuid`. No "deleted" record is written in its
   * place, as nats.js's `ObjectStore.delete` writes one: that record stays live in whichever 8 MB block the file store
   * was writing then, so no block of the bucket ever emptied and the server freed none (the store held every
   * version ever written on disk: review35 F14, docs/transport.md). A purged record reads as no object at all
   * (info() null), which every reader already takes as "not in the bucket". The record goes first: a writer killed
   * between the two leaves chunks no record names (never read), never a record naming purged chunks.
   */
  async deleteObject(name: string, nuid: string | undefined): Promise<void> {
    await this.jsm.streams.purge(this.stream, { filter: this.metaSubject(name) });
    if (nuid !== undefined) await this.purgeChunks(nuid);
  }

  /**
   * Purges the "deleted" records the bucket holds (nats.js's `ObjectStore.delete` wrote them, and so did this store
   * before round 35: deleteObject). Each stays live in the block being written when its object was deleted, so a bucket
   * from before then keeps every block it ever wrote on disk until they are gone. Each purge stops at the record's own
   * sequence: a record written on that subject since (the object put again) is kept. Returns how many were purged.
   */
  async dropDeletedRecords(): Promise<number> {
    const si = await this.jsm.streams.info(this.stream, { subjects_filter: `$O.${this.bucket}.M.>` });
    const subjects = Object.keys(si.state.subjects ?? {});
    let dropped = 0;
    for (let i = 0; i < subjects.length; i += DROP_CONCURRENCY) {
      const done = await Promise.all(subjects.slice(i, i + DROP_CONCURRENCY).map(async (subject) => {
        const m = await this.jsm.streams.getMessage(this.stream, { last_by_subj: subject }).catch((e: unknown) => {
          if ((e as { api_error?: { err_code?: number } }).api_error?.err_code === NO_MESSAGE_FOUND) return null; // purged since the count
          throw e;
        });
        if (!m || !isDeletedRecord(m.data)) return false;
        await this.jsm.streams.purge(this.stream, { filter: subject, seq: m.seq + 1 });
        return true;
      }));
      dropped += done.filter(Boolean).length;
    }
    return dropped;
  }

  /** How many chunks of id `nuid` the stream holds (the server counts them). */
  async countChunks(nuid: string): Promise<number> {
    const subject = this.chunkSubject(nuid);
    const si = await this.jsm.streams.info(this.stream, { subjects_filter: subject });
    return si.state.subjects?.[subject] ?? 0;
  }

  /** Deletes the chunks of id `nuid` (an object's old or abandoned bytes). */
  async purgeChunks(nuid: string): Promise<void> {
    await this.jsm.streams.purge(this.stream, { filter: this.chunkSubject(nuid) });
  }

  /**
   * Reads an object's chunks, in order, into one buffer. The caller checks the size and digest: a tampered object
   * reads as whatever bytes it holds. `what` names the object in errors (e.g. `checkpoints-run/v0000000042`).
   *
   * Each chunk is one direct get (direct-get.ts: the first message on the chunks' subject after the previous one's
   * sequence), not a consumer: the roles that read checkpoints may not make consumers (docs/security.md). A read
   * that ends short on a live connection while the stream holds fewer chunks than `info.chunks` rejects with an
   * ObjectTruncatedError (the object is damaged: reading again gets the same).
   *
   * A read the connection drops under rejects at the drop with a NatsDisconnectedError naming the object (the
   * request in flight fails then: nats-disconnect.ts), and the caller reads again on the new connection.
   */
  async read(info: Pick<ObjectInfo, 'nuid' | 'chunks' | 'size'>, what = info.nuid): Promise<Uint8Array> {
    if (info.chunks === 0) return new Uint8Array(0);
    const subject = this.chunkSubject(info.nuid);
    const parts: Uint8Array[] = [];
    let total = 0;
    // a chunk of up to 8 MiB on a slow or shared link takes seconds: each direct get waits for its chunk at the
    // slowest rate a reader is expected to get (a flat 5 s failed 10 readers of 7.5 MB sharing 100 Mbit/s: round 22's
    // review); a request made while the connection is down still gives up at DIRECT_GET_TIMEOUT_MS for small chunks
    const timeoutMs = Math.max(DIRECT_GET_TIMEOUT_MS, info.size / info.chunks / MIN_READ_BYTES_PER_MS);
    try {
      for (let seq = 1; parts.length < info.chunks; ) {
        const m = await directGet(this.nc, this.stream, { seq, next_by_subj: subject }, timeoutMs);
        if (!m) break;
        parts.push(m.data);
        total += m.data.length;
        seq = m.seq + 1;
      }
    } catch (e) {
      if (e instanceof NatsDisconnectedError) throw new NatsDisconnectedError(subject, `reading ${what}: ${e.message} after ${parts.length} of ${info.chunks} chunks`);
      throw new Error(`object chunks ${subject} of ${what}: reading chunk ${parts.length + 1} of ${info.chunks} failed: ${(e as Error).message}`, { cause: e });
    }
    if (parts.length < info.chunks) {
      // the stream holds no further chunk: does it hold them all? (a failed count leaves the plain error below)
      const held = await this.countChunks(info.nuid).catch(() => undefined);
      if (held !== undefined && held < info.chunks) throw new ObjectTruncatedError(subject, held, info.chunks);
      throw new Error(`object chunks ${subject} of ${what}: got ${parts.length} of ${info.chunks} chunks (purged meanwhile?)`);
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
  }
}
