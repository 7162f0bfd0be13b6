// A single-consumer async queue with high/low water marks, used to turn gRPC stream events into
// AsyncIterables without losing messages that arrive before the consumer starts iterating.

export interface AsyncQueueOptions {
  /** Called when the buffer reaches highWater items (pause the producer). */
  onHigh?: () => void;
  /** Called when the buffer drains to lowWater items after a high (resume the producer). */
  onLow?: () => void;
  highWater?: number;
  lowWater?: number;
}

export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | null = null;
  private done = false;
  private error: unknown = undefined;
  private iterating = false;
  private detached = false;
  private high = false;
  private readonly opts: Required<Pick<AsyncQueueOptions, 'highWater' | 'lowWater'>> & AsyncQueueOptions;

  constructor(opts: AsyncQueueOptions = {}) {
    const highWater = opts.highWater ?? 64;
    this.opts = { ...opts, highWater, lowWater: opts.lowWater ?? Math.floor(highWater / 2) };
  }

  get size(): number {
    return this.items.length;
  }

  get ended(): boolean {
    return this.done;
  }

  push(item: T): void {
    if (this.done || this.detached) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve({ value: item, done: false });
      return;
    }
    this.items.push(item);
    if (!this.high && this.items.length >= this.opts.highWater) {
      this.high = true;
      this.opts.onHigh?.();
    }
  }

  /** No more items: the consumer sees the buffered ones, then the end (or `error`, thrown from next()). */
  end(error?: unknown): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    if (this.waiter && this.items.length === 0) {
      const w = this.waiter;
      this.waiter = null;
      if (error !== undefined) w.reject(error);
      else w.resolve({ value: undefined, done: true });
    }
  }

  private next(): Promise<IteratorResult<T>> {
    if (this.items.length > 0) {
      const value = this.items.shift()!;
      if (this.high && this.items.length <= this.opts.lowWater) {
        this.high = false;
        this.opts.onLow?.();
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.detached) return Promise.resolve({ value: undefined, done: true });
    if (this.done) {
      if (this.error !== undefined) {
        const e = this.error;
        this.error = undefined; // throw once
        this.detached = true;
        return Promise.reject(e);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    if (this.waiter) return Promise.reject(new Error('AsyncQueue: next() called while a previous next() is pending'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.iterating) throw new Error('this message stream has a consumer already (it can be iterated once)');
    this.iterating = true;
    return {
      next: () => this.next(),
      return: async () => {
        // the consumer stopped: drop what is buffered and whatever arrives later
        this.detached = true;
        this.items.length = 0;
        if (this.high) {
          this.high = false;
          this.opts.onLow?.();
        }
        return { value: undefined, done: true };
      },
    };
  }
}
