// The task board's index of tasks by id (its active tasks; a queue's queued ids), as an open-addressing hash table
// in four arrays that are allocated only when the table doubles or halves.
//
// Why not a Map or a Set (round 12, disp12): V8's Map and Set rehash into a new table every few hundred inserts when
// entries are deleted as fast as they are added (deleted entries hold their place until a rehash), and a rehash
// allocates the new table in old space when the old one is there (V8's OrderedHashTable::Rehash), as a long-lived
// board's soon is; the table left behind keeps the entries it had, so the tasks it held stay reachable from old space
// until a mark-compact. Each table is then old-space garbage: bench/index-churn.ts measured 144 B promoted per add and
// delete for a Map against 22 for this class, and the board's Map and Sets were ~200 B per task of what the
// orchestrator promoted (the load bench at 500 workers, LOAD_ALLOC_PROFILE=survivors). Here the arrays are replaced
// only when the table doubles or halves, and a removed entry's slots are cleared at once.
//
// Linear probing with backward-shift deletion (no tombstones), capacity a power of two, at most half full; each
// entry's hash is kept beside it (no key is hashed twice, and a probe compares hashes before strings). The hash is
// FNV-1a over the whole id: a lookup's probe ends at the first empty slot, and the ids inserted are the board's own
// (96 random bits each in the orchestrator's), so a worker's made-up ids cannot lengthen probes. Iteration follows
// insertion order (each entry carries its insertion number), as a Map's did.

const EMPTY = -1;

/** FNV-1a, 32 bits, over the UTF-16 code units of `s`, as a non-negative int. */
export function idHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 1;
}

/**
 * The hash of a task's id, computed once and kept on the task (`idHash`; ids do not change): a task passes through a
 * queue and the active index, five hashings of its id otherwise (~60-180 ns each at 43 characters), where V8 keeps a
 * string's hash in the string.
 */
export function hashOf(t: { readonly id: string; idHash?: number }): number {
  return (t.idHash ??= idHash(t.id));
}

export class TaskIndex<T> {
  private keys: Array<string | undefined>;
  private vals: Array<T | undefined>;
  /** Each slot's key hash, or EMPTY. */
  private hashes: Int32Array;
  /** Each slot's insertion number (iteration order). */
  private order: Float64Array;
  private mask: number;
  private n = 0;
  private inserted = 0;

  constructor(private readonly minCapacity = 64) {
    this.mask = minCapacity - 1;
    this.keys = new Array<string | undefined>(minCapacity).fill(undefined);
    this.vals = new Array<T | undefined>(minCapacity).fill(undefined);
    this.hashes = new Int32Array(minCapacity).fill(EMPTY);
    this.order = new Float64Array(minCapacity);
  }

  get size(): number {
    return this.n;
  }

  /** The slot holding `key`, or -1. */
  private find(key: string, h: number): number {
    const hashes = this.hashes;
    for (let i = h & this.mask; ; i = (i + 1) & this.mask) {
      const s = hashes[i]!;
      if (s === EMPTY) return -1;
      if (s === h && this.keys[i] === key) return i;
    }
  }

  get(key: string): T | undefined {
    const i = this.find(key, idHash(key));
    return i < 0 ? undefined : this.vals[i];
  }

  has(key: string): boolean {
    return this.find(key, idHash(key)) >= 0;
  }

  /** Adds or replaces the value of `key` (a replaced entry keeps its place in the order, as Map.set); h: idHash(key). */
  set(key: string, value: T, h = idHash(key)): void {
    const at = this.find(key, h);
    if (at >= 0) {
      this.vals[at] = value;
      return;
    }
    if (2 * (this.n + 1) > this.mask + 1) this.resize(2 * (this.mask + 1));
    let i = h & this.mask;
    while (this.hashes[i] !== EMPTY) i = (i + 1) & this.mask;
    this.hashes[i] = h;
    this.keys[i] = key;
    this.vals[i] = value;
    this.order[i] = this.inserted++;
    this.n++;
  }

  delete(key: string, h = idHash(key)): boolean {
    const i = this.find(key, h);
    if (i < 0) return false;
    this.removeAt(i);
    return true;
  }

  /** Deletes `key` only if it maps to `value` (one probe for a get and a delete); whether it did. h: idHash(key). */
  deleteValue(key: string, value: T, h = idHash(key)): boolean {
    const i = this.find(key, h);
    if (i < 0 || this.vals[i] !== value) return false;
    this.removeAt(i);
    return true;
  }

  private removeAt(i: number): void {    // Backward shift: move later entries of the cluster into the hole when their home slot allows it.
    const mask = this.mask;
    for (let j = (i + 1) & mask; this.hashes[j] !== EMPTY; j = (j + 1) & mask) {
      const home = this.hashes[j]! & mask;
      // j's entry may fill the hole at i if its home is not cyclically in (i, j]
      if (((j - home) & mask) >= ((j - i) & mask)) {
        this.hashes[i] = this.hashes[j]!;
        this.keys[i] = this.keys[j];
        this.vals[i] = this.vals[j];
        this.order[i] = this.order[j]!;
        i = j;
      }
    }
    this.hashes[i] = EMPTY;
    this.keys[i] = undefined;
    this.vals[i] = undefined;
    this.n--;
    // Halve only well below the grow threshold, so a size that hovers near a boundary does not resize each time.
    if (this.mask + 1 > this.minCapacity && 8 * this.n < this.mask + 1) this.resize((this.mask + 1) / 2);
  }

  /** The values, in insertion order (a new array: the caller may change the index while reading it). */
  values(): T[] {
    return this.collect(() => true);
  }

  /** The values that match `pred`, in insertion order; only those are copied. */
  collect(pred: (v: T) => boolean): T[] {
    const at: number[] = [];
    for (let i = 0; i <= this.mask; i++) if (this.hashes[i] !== EMPTY && pred(this.vals[i]!)) at.push(i);
    at.sort((a, b) => this.order[a]! - this.order[b]!);
    return at.map((i) => this.vals[i]!);
  }

  private resize(capacity: number): void {
    const { keys, vals, hashes, order } = this;
    this.mask = capacity - 1;
    this.keys = new Array<string | undefined>(capacity).fill(undefined);
    this.vals = new Array<T | undefined>(capacity).fill(undefined);
    this.hashes = new Int32Array(capacity).fill(EMPTY);
    this.order = new Float64Array(capacity);
    for (let k = 0; k < hashes.length; k++) {
      const h = hashes[k]!;
      if (h === EMPTY) continue;
      let i = h & this.mask;
      while (this.hashes[i] !== EMPTY) i = (i + 1) & this.mask;
      this.hashes[i] = h;
      this.keys[i] = keys[k];
      this.vals[i] = vals[k];
      this.order[i] = order[k]!;
    }
    // The old arrays may sit in old space until a mark-compact: leave them pointing at nothing.
    keys.fill(undefined);
    vals.fill(undefined);
  }
}
