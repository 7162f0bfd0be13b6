// Buffers that a follower's pushed checkpoints are received into, reused once nobody holds the checkpoint.
//
// Why: on this kind of VM the first write to fresh memory costs ~4 ms per MB in page faults (docs/performance-history/broadcast.md
// "Round 9: bcast9"), more than receiving and hashing the same bytes, and every pushed checkpoint landed in a new
// buffer of its size. A follower holds one checkpoint at a time (the policy it runs), so two or three buffers,
// reused, are all it ever needs.
//
// Safety: a buffer goes back to the pool only when every holder has released it: the push receiver (while the
// checkpoint is its newest) and each consumer that took it (CheckpointStore.get with `reuse`, which must call
// release() once it has dropped every view of the bytes). On the last release the ArrayBuffer is detached
// (transferred to a new ArrayBuffer object, no copy): every view anyone kept of the old one reads as empty (length
// 0; onnxruntime refuses such a feed), so a view kept past release() can never see the next checkpoint's bytes.
// A consumer that never releases only costs the pool that buffer (the garbage collector takes it).

/** Buffers kept free at most (a follower holds one checkpoint, receives the next, and may be assembling a third). */
export const POOL_KEEP = 3;
/** Room for a message's headers beside the checkpoint, so the next version (other metadata) still fits. */
const HEADROOM = 64 * 1024;

/** A buffer's capacity for `size` bytes: rounded up past HEADROOM to 64 KiB. */
export function capacityFor(size: number): number {
  return Math.ceil((size + HEADROOM) / HEADROOM) * HEADROOM;
}

export class CheckpointBuffers {
  private free: ArrayBuffer[] = [];
  /** Holders of each buffer handed out (only buffers of this pool are counted). */
  private readonly refs = new WeakMap<ArrayBuffer, number>();
  private reservedFor = 0;
  private closed = false;

  constructor(private readonly keep = POOL_KEEP) {}

  /** A buffer of at least `size` bytes with one holder (the caller): a free one that fits, else a new one. */
  alloc(size: number): ArrayBuffer {
    const i = this.free.findIndex((b) => b.byteLength >= size && b.byteLength <= capacityFor(size) + HEADROOM);
    const ab = i >= 0 ? this.free.splice(i, 1)[0]! : new ArrayBuffer(capacityFor(size));
    this.refs.set(ab, 1);
    return ab;
  }

  /** True when `ab` was handed out by this pool and is still held. */
  owns(ab: ArrayBufferLike): boolean {
    return ab instanceof ArrayBuffer && (this.refs.get(ab) ?? 0) > 0;
  }

  /** One more holder of `ab` (a buffer this pool handed out and someone still holds). */
  acquire(ab: ArrayBufferLike): void {
    const n = ab instanceof ArrayBuffer ? this.refs.get(ab) : undefined;
    if (!n) throw new Error('checkpoint buffer: acquired after its last release (or not from this pool)');
    this.refs.set(ab as ArrayBuffer, n + 1);
  }

  /**
   * One holder of `ab` fewer; on the last, `ab` is detached (every view of it reads as empty) and its memory kept for
   * the next checkpoint. A buffer not from this pool is left alone.
   */
  release(ab: ArrayBufferLike): void {
    if (!(ab instanceof ArrayBuffer)) return;
    const n = this.refs.get(ab);
    if (n === undefined) return;
    if (n > 1) {
      this.refs.set(ab, n - 1);
      return;
    }
    this.refs.delete(ab);
    // the same memory under a new ArrayBuffer object; `ab` and its views are now zero-length
    const moved = structuredClone(ab, { transfer: [ab] });
    if (this.closed) return;
    this.free.push(moved);
    if (this.free.length > this.keep) this.free.shift();
  }

  /**
   * Makes `count` buffers for checkpoints of `size` bytes ready, written once so that their pages are mapped: called
   * when a follower takes its first checkpoint (its join), so that the versions it follows land in memory it has
   * already touched. Only the first call per size does anything.
   */
  reserve(size: number, count: number): void {
    if (this.closed || this.reservedFor === size) return;
    this.reservedFor = size;
    const fits = (b: ArrayBuffer) => b.byteLength >= size && b.byteLength <= capacityFor(size) + HEADROOM;
    this.free = this.free.filter(fits);
    while (this.free.length < Math.min(count, this.keep)) {
      const ab = new ArrayBuffer(capacityFor(size));
      new Uint8Array(ab).fill(0);
      this.free.push(ab);
    }
  }

  /** Free buffers (tests). */
  get freeCount(): number {
    return this.free.length;
  }

  /** Drops the free buffers; later releases still detach, but keep nothing. */
  close(): void {
    this.closed = true;
    this.free = [];
  }
}
