// Dataset samples by cursor, the next batch's loaded ahead (decoding and corruption take milliseconds).
import type { Dataset, Sample } from '../lib/data/dataset.ts';

export class SampleCache {
  private readonly ahead = new Map<number, Promise<Sample>>();

  constructor(private readonly dataset: Dataset) {}

  load(cursor: number): Promise<Sample> {
    const hit = this.ahead.get(cursor);
    if (hit) {
      this.ahead.delete(cursor);
      return hit;
    }
    return this.dataset.sample(cursor);
  }

  preload(cursors: readonly number[]): void {
    for (const c of cursors) {
      if (this.ahead.has(c)) continue;
      const p = this.dataset.sample(c);
      p.catch(() => undefined); // a failure surfaces when the sample is really needed
      this.ahead.set(c, p);
    }
  }
}
