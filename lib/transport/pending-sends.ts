// The sends a stream has handed to gRPC and not yet seen written, failed all at once if the stream ends.
// A list threaded through its entries (threaded-list.ts), not a Set (round 12, disp12): a Set that gains and loses an
// entry per message rehashes into a new table every few messages, in old space once the long-lived stream's table is
// there (V8's OrderedHashTable::Rehash), so each is old-space garbage (per connection: hundreds of them on the
// orchestrator; orchestrator/task-index.ts).
import { ThreadedList } from './threaded-list.ts';

export interface PendingEntry<T> {
  readonly value: T;
  prev: PendingEntry<T> | undefined;
  next: PendingEntry<T> | undefined;
  listed: boolean;
}

export class PendingSends<T> {
  private readonly list = new ThreadedList<PendingEntry<T>>();

  get size(): number {
    return this.list.size;
  }

  add(value: T): PendingEntry<T> {
    const e: PendingEntry<T> = { value, prev: undefined, next: undefined, listed: true };
    this.list.append(e);
    return e;
  }

  /** Removes `e` (once; a second call does nothing). */
  delete(e: PendingEntry<T>): void {
    if (!e.listed) return;
    e.listed = false;
    this.list.remove(e);
  }

  /** Empties the list and returns its values, oldest first. */
  drain(): T[] {
    const out: T[] = [];
    while (this.list.head) {
      out.push(this.list.head.value);
      this.delete(this.list.head);
    }
    return out;
  }
}
