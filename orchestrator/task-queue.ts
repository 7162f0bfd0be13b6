// The task board's queue: a ring buffer (O(1) at both ends, where Array.shift/unshift copy the whole queue
// under overload) with an index of the queued ids (a result for a queued or unknown task is told apart without
// scanning the queue). The ids are a TaskIndex, not a Set: a Set's churn promoted the tasks it held (task-index.ts).

import { hashOf, TaskIndex } from './task-index.ts';

export class TaskQueue<T extends { readonly id: string; idHash?: number }> {
  private buf: Array<T | undefined> = new Array(16);
  private head = 0;
  private n = 0;
  private readonly ids = new TaskIndex<T>();

  get length(): number {
    return this.n;
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }

  push(t: T): void {
    if (this.n === this.buf.length) this.grow();
    this.buf[(this.head + this.n) & (this.buf.length - 1)] = t;
    this.n++;
    this.ids.set(t.id, t, hashOf(t));
  }

  /** Puts `t` first (a re-queued task goes before the new ones). */
  unshift(t: T): void {
    if (this.n === this.buf.length) this.grow();
    this.head = (this.head - 1) & (this.buf.length - 1);
    this.buf[this.head] = t;
    this.n++;
    this.ids.set(t.id, t, hashOf(t));
  }

  peek(): T | undefined {
    return this.n === 0 ? undefined : this.buf[this.head];
  }

  shift(): T | undefined {
    if (this.n === 0) return undefined;
    const t = this.buf[this.head]!;
    this.buf[this.head] = undefined;
    this.head = (this.head + 1) & (this.buf.length - 1);
    this.n--;
    this.ids.delete(t.id, hashOf(t));
    return t;
  }

  /** Removes every task matching `pred` (order kept); returns them. O(n): for rare cancellations. */
  removeWhere(pred: (t: T) => boolean): T[] {
    const kept: T[] = [];
    const removed: T[] = [];
    for (let t = this.shift(); t !== undefined; t = this.shift()) (pred(t) ? removed : kept).push(t);
    for (const t of kept) this.push(t);
    return removed;
  }

  private grow(): void {
    const old = this.buf;
    const next = new Array<T | undefined>(old.length * 2); // stays a power of two (the index mask)
    for (let i = 0; i < this.n; i++) next[i] = old[(this.head + i) & (old.length - 1)];
    this.buf = next;
    this.head = 0;
  }
}
