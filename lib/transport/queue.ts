// A single-consumer async queue with high/low water marks, used to turn gRPC stream events into
// AsyncIterables without losing messages that arrive before the consumer starts iterating. A consumer that handles
// each item synchronously may instead `consume` it (forEachItem): items are then handed over as they are pushed,
// without a Promise, an iterator result and a microtask per item (~0.5 us per result on the orchestrator's hot path).

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
  /** The synchronous consumer (consume()), if that is how this queue is consumed. */
  private sink: { handler: (item: T) => void; resolve: () => void; reject: (e: unknown) => void } | null = null;
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
    if (this.sink) {
      this.deliver(item);
      return;
    }
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
    if (this.sink) {
      const sink = this.sink;
      this.sink = null;
      this.detached = true;
      if (error !== undefined) sink.reject(error);
      else sink.resolve();
      return;
    }
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

  /**
   * Consumes the queue by calling `handler` on each item, in order, synchronously as it is pushed (the ones buffered
   * first). Instead of iterating: a queue has one consumer. Resolves when the queue ends; rejects with the end's
   * error, or with what `handler` threw (nothing more is delivered then), as a for-await loop would.
   */
  consume(handler: (item: T) => void): Promise<void> {
    if (this.iterating) return Promise.reject(new Error('this message stream has a consumer already (it can be iterated once)'));
    this.iterating = true;
    return new Promise<void>((resolve, reject) => {
      this.sink = { handler, resolve, reject };
      while (this.sink && this.items.length > 0) this.deliver(this.items.shift()!);
      if (this.high) {
        this.high = false;
        this.opts.onLow?.();
      }
      if (this.sink && this.done) {
        this.done = false;
        this.end(this.error);
      }
    });
  }

  private deliver(item: T): void {
    const sink = this.sink!;
    try {
      sink.handler(item);
    } catch (e) {
      this.sink = null;
      this.detached = true;
      this.items.length = 0;
      sink.reject(e);
    }
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

/**
 * Calls `handler` on each message of `stream` in order: synchronously as they arrive when the stream is an
 * AsyncQueue (a session's or connection's `messages`), else by iterating it. Resolves at the stream's end.
 */
export async function forEachItem<T>(stream: AsyncIterable<T>, handler: (item: T) => void): Promise<void> {
  if (stream instanceof AsyncQueue) return (stream as AsyncQueue<T>).consume(handler);
  for await (const item of stream) handler(item);
}
