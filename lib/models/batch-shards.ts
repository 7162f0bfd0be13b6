// The GRPO graph on shards of the batch (data parallelism; docs/performance-history/grpo-step.md, "Round 26: grpo26"). A batch of n
// rows is cut into two shards, rows [0, ceil(n/2)) and [ceil(n/2), n) (one shard when n is 1), each shard runs the
// same training graph (row-forms.ts: its form chosen by its own rows), and the shards' outputs are combined in
// TypeScript in a fixed order: the batch means (the loss, its gradients, kl, clip_fraction, identity_loss) as
// sum_s (n_s / n) * mean_s in float32, shard 0's term first, and the per-row outputs (logp, ratio) concatenated.
// The graph normalises each shard by its own rows, so the weight n_s / n makes the combined loss the whole batch's
// mean (exactly 0.5 each for an even n: a power of two). The shards and the order depend on n alone, never on the
// threads or cores: with two lanes (two cores or more, CPU) the shards run at once, one on a session on this thread
// and one on a session in a worker thread (lib/graph/graph-thread.ts), each with half the threads per operator;
// with one lane (--threads 1, or a GPU) they run one after the other on one session. onnxruntime's outputs do not
// depend on its thread count (test/models/threads.test.ts), so both give the same bytes
// (test/models/batch-shards.test.ts). The whole batch's run differs from the shards' only in float rounding.
//
// Why: the GRPO graph's memory-bound ops gain only 0.9-1.7x from a second thread per operator, but one session per
// core on half the rows each scales nearly perfectly (docs/performance.md, "GRPO step against the policy forward").
import { availableParallelism } from 'node:os';
import type { Feeds, Fetches } from '../graph/runtime.ts';
import { intraOpThreads } from '../graph/runtime.ts';
import type { Device } from '../graph/device.ts';
import { RowForms } from './row-forms.ts';
import { sliceFeeds } from './lanes.ts';

/** The per-row outputs of a GRPO graph (concatenated over the shards); every other output is a mean over the batch. */
export const PER_ROW_OUTPUTS: ReadonlySet<string> = new Set(['logp', 'ratio']);

/** The shards of a batch of n rows, as [start, rows]: two (the first the larger by one row at odd n), one when n is 1. */
export function batchShards(n: number): Array<[start: number, rows: number]> {
  if (!Number.isInteger(n) || n < 1) throw new Error(`batch shards: the batch must have an integer number of rows >= 1, got ${n}`);
  if (n === 1) return [[0, 1]];
  const first = Math.ceil(n / 2);
  return [[0, first], [first, n - first]];
}

/**
 * The whole batch's outputs from its shards' (`outs[s]` of rows `shards[s]`, as batchShards(n) gives): per-row
 * outputs concatenated, the others weighted by each shard's share of the rows and summed in float32, shard 0 first.
 */
export function combineShards(outs: readonly Fetches[], shards: ReadonlyArray<readonly [number, number]>, n: number): Fetches {
  if (outs.length !== shards.length || outs.length === 0) throw new Error(`combineShards: ${outs.length} shard outputs for ${shards.length} shards`);
  if (outs.length === 1) return outs[0]!;
  const out: Fetches = {};
  for (const [name, first] of Object.entries(outs[0]!)) {
    const parts = outs.map((o, s) => {
      const f = o[name];
      if (!f) throw new Error(`combineShards: shard ${s} has no output ${name}`);
      return f;
    });
    if (PER_ROW_OUTPUTS.has(name)) {
      const data = new Float32Array(parts.reduce((a, p) => a + p.data.length, 0));
      let at = 0;
      for (const p of parts) {
        data.set(p.data, at);
        at += p.data.length;
      }
      out[name] = { data, dims: [n, ...first.dims.slice(1)] };
      continue;
    }
    const length = first.data.length;
    const data = new Float32Array(length);
    parts.forEach((p, s) => {
      if (p.data.length !== length) throw new Error(`combineShards: output ${name} has ${p.data.length} values in shard ${s}, ${length} in shard 0`);
      const w = shards[s]![1] / n;
      const x = p.data;
      // float32 products and sums (Math.fround of a double sum or product of two float32s is the float32 operation)
      if (s === 0) for (let i = 0; i < length; i++) data[i] = Math.fround(x[i]! * w);
      else for (let i = 0; i < length; i++) data[i] = Math.fround(data[i]! + Math.fround(x[i]! * w));
    });
    out[name] = { data, dims: first.dims };
  }
  return out;
}

/**
 * Promise.all that waits for every promise to settle before it rejects (with the first error in the list's order):
 * a lane's error must not return while the other lane is still inside onnxruntime, where a caller's process.exit
 * aborts the process (exit 134; review26d F6, round 26).
 */
export async function settleAll<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/** Lanes for the shards: two on the CPU when the process has two threads per operator or more, else one. */
export function shardLanes(device: Device, threads = intraOpThreads()): number {
  const t = threads === 0 ? availableParallelism() : threads;
  return device === 'cpu' && t >= 2 ? 2 : 1;
}

/**
 * A training graph's sessions for sharded batches: lane 0 on this thread (or wherever --graph-thread puts it), lane 1
 * (with two lanes) in a worker thread, each holding its RowForms. `build(sharedRows)` gives the graph's bytes.
 */
export class ShardedForms {
  private readonly lanes: RowForms[];

  /** The lanes and their threads follow the process's threads per operator when this is created (cli: --threads). */
  constructor(build: (sharedRows: boolean) => Uint8Array, device: Device, lanes = shardLanes(device)) {
    if (lanes !== 1 && lanes !== 2) throw new Error(`ShardedForms: lanes must be 1 or 2, got ${lanes}`);
    const threads = intraOpThreads();
    // two lanes share the threads per operator; one keeps the process's setting
    const perLane = lanes === 1 ? threads : Math.max(1, Math.floor((threads === 0 ? availableParallelism() : threads) / 2));
    this.lanes = [new RowForms(build, { device, intraOpThreads: perLane })];
    if (lanes === 2) this.lanes.push(new RowForms(build, { device, intraOpThreads: perLane, thread: 'on' }));
  }

  get laneCount(): number {
    return this.lanes.length;
  }

  /** Lane 0's forms whose session exists or is being created (every lane creates the same ones). */
  created(): string[] {
    return this.lanes[0]!.created();
  }

  /** Creates `form`'s session on every lane now rather than at the first batch that needs it. */
  async prepare(form: 'shared' | 'plain'): Promise<void> {
    await settleAll(this.lanes.map((l) => l.session(form)));
  }

  /** Lane 0's session of `form` (benches). */
  session(form: 'shared' | 'plain') {
    return this.lanes[0]!.session(form);
  }

  /**
   * Runs a batch of n rows in shards (batchShards) and combines their outputs (combineShards). `rows`: the batch-major
   * feeds, [n, ...] each, `image` among them; `common`: the rest (parameters, hyper-parameters), the same for every shard.
   */
  async run(n: number, rows: Feeds, common: Feeds): Promise<Fetches> {
    const image = rows.image;
    if (!image) throw new Error('ShardedForms.run: the row feeds have no image');
    const shards = batchShards(n);
    const runShard = (lane: RowForms, [start, m]: readonly [number, number]) => {
      const part = sliceFeeds(rows, n, start, m);
      return lane.run(part.image!.data, m, { ...common, ...part });
    };
    let outs: Fetches[];
    if (this.lanes.length === 1 || shards.length === 1) {
      outs = [];
      for (const s of shards) outs.push(await runShard(this.lanes[0]!, s));
    } else {
      // lane 1's shard first: its thread runs while lane 0 runs on this thread (a synchronous onnxruntime call)
      const second = runShard(this.lanes[1]!, shards[1]!);
      const first = runShard(this.lanes[0]!, shards[0]!);
      outs = await settleAll([first, second]);
    }
    return combineShards(outs, shards, n);
  }

  async release(): Promise<void> {
    await Promise.all(this.lanes.map((l) => l.release()));
  }
}
