// Work handled in arrival order, one handling at a time: the learner's batches (which must apply in sequence,
// one per handling) and the reward worker's score tasks (several queued ones per handling, when `take` says so:
// one graph call for them all). The role supplies `handle`; the queue gives it drain, cancel and close.
export class SerialQueue<T> {
  private items: T[] = [];
  private running: T[] = [];
  private closed = false;
  private wake: (() => void) | undefined;
  private idle: Array<() => void> = [];
  private readonly done: Promise<void>;
  private readonly takesSeveral: boolean;

  /**
   * `handle(first, more)`: `more` are the items after `first` taken with it (empty unless `take` is given).
   * `take(queued)`: how many of the queued items (at least 1) the next handling takes; default 1.
   */
  constructor(
    private readonly handle: (first: T, more: T[]) => Promise<void>,
    private readonly idOf: (item: T) => string,
    private readonly take?: (queued: readonly T[]) => number,
  ) {
    this.takesSeveral = take !== undefined;
    this.done = this.loop();
  }

  /**
   * Queues `item`, unless an item with its id is queued already: a sender that re-sends what it has not heard back
   * about (the orchestrator's unacknowledged batches) must not pile copies up behind a slow or failing item.
   */
  push(item: T): void {
    const id = this.idOf(item);
    if (this.items.some((x) => this.idOf(x) === id)) return;
    this.items.push(item);
    this.kick();
  }

  /** Drops a queued item by id; returns whether a running item has that id (the role decides what that means). */
  cancel(id: string): boolean {
    this.items = this.items.filter((x) => this.idOf(x) !== id);
    this.settle();
    return this.running.some((x) => this.idOf(x) === id);
  }

  /** Drops every queued item; returns the running ones. */
  clear(): T[] {
    this.items = [];
    this.settle();
    return [...this.running];
  }

  /** Ids of the running items and the queued ones (they renew their leases). */
  ids(): string[] {
    return [...this.running, ...this.items].map(this.idOf);
  }

  get size(): number {
    return this.items.length + this.running.length;
  }

  /** Resolves once nothing is queued or running. */
  async drain(): Promise<void> {
    if (this.size > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  /** Stops after the running item; queued items are not handled. */
  async close(): Promise<void> {
    this.closed = true;
    this.kick();
    await this.done;
  }

  private settle(): void {
    if (this.size === 0) for (const r of this.idle.splice(0)) r();
  }

  private kick(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      if (this.items.length === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        // woken by the first of several items that arrived together (a TaskBundle): let the rest arrive first
        if (this.takesSeveral) await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      const n = Math.max(1, Math.min(this.items.length, this.take?.(this.items) ?? 1));
      const [first, ...more] = this.items.splice(0, n) as [T, ...T[]];
      this.running = [first, ...more];
      try {
        await this.handle(first, more);
      } finally {
        this.running = [];
        this.settle();
      }
    }
  }
}
