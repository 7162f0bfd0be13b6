// Work handled one item at a time, in arrival order: the learner's batches (which must apply in sequence)
// and the reward worker's score tasks. The role supplies `handle`; the queue gives it drain, cancel and close.
export class SerialQueue<T> {
  private items: T[] = [];
  private running: T | undefined;
  private closed = false;
  private wake: (() => void) | undefined;
  private idle: Array<() => void> = [];
  private readonly done: Promise<void>;

  constructor(
    private readonly handle: (item: T) => Promise<void>,
    private readonly idOf: (item: T) => string,
  ) {
    this.done = this.loop();
  }

  push(item: T): void {
    this.items.push(item);
    this.kick();
  }

  /** Drops a queued item by id; returns whether the running item has that id (the role decides what that means). */
  cancel(id: string): boolean {
    this.items = this.items.filter((x) => this.idOf(x) !== id);
    this.settle();
    return this.running !== undefined && this.idOf(this.running) === id;
  }

  /** Drops every queued item; returns the running one, if any. */
  clear(): T | undefined {
    this.items = [];
    this.settle();
    return this.running;
  }

  /** Ids of the running item and the queued ones (they renew their leases). */
  ids(): string[] {
    return [...(this.running ? [this.running] : []), ...this.items].map(this.idOf);
  }

  get size(): number {
    return this.items.length + (this.running ? 1 : 0);
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
      const item = this.items.shift();
      if (item === undefined) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      this.running = item;
      try {
        await this.handle(item);
      } finally {
        this.running = undefined;
        this.settle();
      }
    }
  }
}
