// The stale-row check's forward on two lanes (lib/grpo/stale-check.ts; docs/performance-history/pipeline.md "Round 27:
// stale27"). Round 26 ran it on the KL reference's session: one session with the process's two threads per operator,
// on the learner's thread, before the step. The step's GRPO graph runs on two lanes instead (lib/models/batch-shards.ts:
// one single-thread session per core, one in a worker thread), because a second thread per operator gains little on
// this network; the check does the same: its rows are cut at a group boundary into two parts, lane 1 (a worker
// thread) runs the second while lane 0 runs the first on this thread, and the first part's log-densities are
// computed (JavaScript, stale-check.ts gaussianRowLogp) while lane 1 is still running.
//
// Same bytes: the network's mean of an image does not depend on the other images of its run nor on the threads per
// operator, as long as every run holds two images or more (lib/graph/shared-rows.ts repeatedRows: onnxruntime's Conv
// threads a batch of one differently). So a part is never a single row; a batch that cannot be cut so runs whole on
// lane 0. test/learner/stale-lanes.test.ts compares the lanes' means with the reference session's, byte for byte.
import type { RunConfig } from '../lib/config/index.ts';
import type { TensorMap } from '../lib/checkpoint/index.ts';
import { GraphSession } from '../lib/graph/runtime.ts';
import type { Device } from '../lib/graph/device.ts';
import { equalRuns } from '../lib/graph/shared-rows.ts';
import { policyModel, resolutionOf } from '../lib/models/bundle.ts';
import { laneThreads, settleAll, shardLanes } from '../lib/models/batch-shards.ts';
import { paramFeeds, sharedRowFeeds } from '../lib/models/feeds.ts';
import type { MeanPart } from '../lib/grpo/stale-check.ts';

/**
 * The parts of n rows of `images` [n, ...] for two lanes, as [start, rows]: cut at the start of the run of equal
 * consecutive images (a group) that leaves the first part the larger half of the runs, when each part then holds
 * two rows or more; else one part, all rows.
 */
export function staleCheckParts(images: Float32Array, n: number): Array<[start: number, rows: number]> {
  if (n < 4) return [[0, n]];
  const { firsts } = equalRuns(images, n, 'stale check images');
  // one image for all rows: the network runs once either way
  if (firsts.length < 2) return [[0, n]];
  const cut = firsts[Math.ceil(firsts.length / 2)] ?? n;
  return cut >= 2 && n - cut >= 2 ? [[0, cut], [cut, n - cut]] : [[0, n]];
}

/** The policy network's mean on the check's two lanes; created only where the step has two (shardLanes). */
export class StaleCheckLanes {
  /** Zeros for the noise input, kept (only read): a batch's part sizes repeat. */
  private zeros = new Float32Array(0);

  private constructor(private readonly lanes: GraphSession[], private readonly height: number, private readonly width: number) {}

  /** Two lanes (CPU, two threads per operator or more), else undefined: the check keeps the reference's session. */
  static async create(config: RunConfig, device: Device): Promise<StaleCheckLanes | undefined> {
    if (shardLanes(device) !== 2) return undefined;
    const r = resolutionOf(config);
    const model = policyModel(config, r, { sharedRows: true });
    const threads = laneThreads(2);
    const lanes = await settleAll([
      GraphSession.create(model, { device, intraOpThreads: threads, name: 'stale check (lane 0)' }),
      GraphSession.create(model, { device, intraOpThreads: threads, thread: 'on', name: 'stale check (lane 1)' }),
    ]);
    return new StaleCheckLanes(lanes, r.height, r.width);
  }

  /** The mean of n images under `params` in parts (staleCheckParts), lane 1's started first. */
  parts(params: TensorMap, images: Float32Array, n: number): MeanPart[] {
    const parts = staleCheckParts(images, n);
    const P = images.length / n;
    const run = (lane: GraphSession, [start, m]: readonly [number, number]) => {
      const img = images.subarray(start * P, (start + m) * P);
      const dims = [m, 3, this.height, this.width];
      // the noise is not read into the mean: zeros, as PolicyRunner.mean
      if (this.zeros.length < img.length) this.zeros = new Float32Array(images.length);
      return lane.run({ ...paramFeeds(params), ...sharedRowFeeds(img, m), image: { data: img, dims }, noise: { data: this.zeros.subarray(0, img.length), dims } }, ['mean']).then((o) => o.mean!.data);
    };
    // lane 1's part first: its thread runs while lane 0 runs on this thread (a synchronous onnxruntime call)
    const second = parts[1] ? run(this.lanes[1]!, parts[1]) : undefined;
    const first = run(this.lanes[0]!, parts[0]!);
    return [{ start: 0, rows: parts[0]![1], mean: first }, ...(second ? [{ start: parts[1]![0], rows: parts[1]![1], mean: second }] : [])];
  }

  async release(): Promise<void> {
    await Promise.all(this.lanes.map((l) => l.release()));
  }
}
