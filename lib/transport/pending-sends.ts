// The sends a stream has handed to gRPC and not yet seen written, failed all at once if the stream ends.
// A list threaded through its entries, not a Set (round 12, disp12): a Set that gains and loses an entry per message
// rehashes into a new table every few messages, in old space once the long-lived stream's table is there (V8's
// OrderedHashTable::Rehash), so each is old-space garbage (per connection: hundreds of them on the orchestrator;
// orchestrator/task-index.ts). A removed entry's links are cleared, so nothing dead points at a live one.

export interface PendingEntry<T> {
  readonly value: T;
  prev: PendingEntry<T> | undefined;
  next: PendingEntry<T> | undefined;
  listed: boolean;
}

export class PendingSends<T> {
  private head: PendingEntry<T> | undefined;
  private tail: PendingEntry<T> | undefined;
  private n = 0;

  get size(): number {
    return this.n;
  }

  add(value: T): PendingEntry<T> {
    const e: PendingEntry<T> = { value, prev: this.tail, next: undefined, listed: true };
    if (this.tail) this.tail.next = e;
    else this.head = e;
    this.tail = e;
    this.n++;
    return e;
  }

  /** Removes `e` (once; a second call does nothing). */
  delete(e: PendingEntry<T>): void {
    if (!e.listed) return;
    e.listed = false;
    if (e.prev) e.prev.next = e.next;
    else this.head = e.next;
    if (e.next) e.next.prev = e.prev;
    else this.tail = e.prev;
    e.prev = e.next = undefined;
    this.n--;
  }

  /** Empties the list and returns its values, oldest first. */
  drain(): T[] {
    const out: T[] = [];
    while (this.head) {
      out.push(this.head.value);
      this.delete(this.head);
    }
    return out;
  }
}
