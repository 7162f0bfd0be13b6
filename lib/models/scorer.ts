// Scores candidate images against references with the reward graph: SSIM and embedding cosine per item
// (and the SSIM map when asked). One ORT session per resolution (on the CPU, one per lane), created on first
// use. This is the one place that slices a batch into graph runs and checks what it scores: callers (the
// reward worker, the training and evaluation loops) hand it the whole batch. A batch that cannot be scored
// is a ScoreError naming the item, never a number that looks like a reward.
import type { Fetches } from '../graph/runtime.ts';
import type { Device } from '../graph/device.ts';
import { GraphSession } from '../graph/runtime.ts';
import { rewardModel } from './bundle.ts';
import { rewardRowFeeds } from './feeds.ts';
import { lanesFor, SessionLanes, sliceFeeds } from './lanes.ts';
import type { EncoderChoice } from './reward.ts';
import { SSIM_LANE_RUN_BATCH, SSIM_RUN_BATCH, SSIM_WINDOW } from './ssim.ts';

export interface ScoreBatch {
  /** [n,3,h,w] candidates and references, values in [0,1]. */
  candidates: Float32Array;
  references: Float32Array;
  n: number;
  height: number;
  width: number;
}

export interface Scores {
  ssim: Float32Array;
  clip_cos: Float32Array;
  ssim_map?: Float32Array;
}

/**
 * Why a batch was not scored. `bad_input`: wrong sizes; `non_finite`: a non-finite input value or score.
 * `item` is the batch index it names (undefined for the batch as a whole). The message starts with the
 * field (`candidates`, `references`, `ssim`, `clip_cos`), so a caller can prefix its own name for them.
 */
export class ScoreError extends Error {
  constructor(
    readonly code: 'bad_input' | 'non_finite',
    readonly item: number | undefined,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Pixels per image from which a CPU batch is spread over several lanes (SessionLanes). Below it a slice of
 * SSIM_RUN_BATCH items takes around a millisecond and handing it to a worker thread saves little (and no
 * worker thread is started for small images, as in the tests' 16-64 px runs).
 */
export const LANE_MIN_PIXELS = 128 * 128;

export interface RewardScorerOptions {
  /** Lanes for a CPU batch of images of at least LANE_MIN_PIXELS (default lanesFor(): --threads, else one per core). */
  lanes?: number;
  /** Overrides LANE_MIN_PIXELS. */
  laneMinPixels?: number;
}

interface Runner {
  /** Each slice's fetches, in order. */
  runSlices(feeds: Record<string, { data: Float32Array; dims: number[] }>, n: number, outputs: readonly string[]): Promise<Fetches[]>;
  release(): Promise<void>;
}

/**
 * Items per graph run below LANE_MIN_PIXELS on one lane: one default GRPO group (G = 8), whose candidates share a
 * reference that the shared-reference graph then encodes once per run (9 encoder rows for 8 candidates; slices of
 * SSIM_RUN_BATCH took 5 for 4). At 32 px the encoder, which resizes every image to 224x224, is most of the graph.
 */
export const SMALL_RUN_BATCH = 8;

/**
 * One lane (as SessionLanes with one lane: a GraphSession with the process's threads per operator)
 * running `g`, the reward graph built with `sharedReferences`: each slice's run of equal references goes through the
 * encoder once (encoder.ts, embeddingCosineSharedReference), the same values as the plain graph.
 */
function sharedReferenceRunner(g: GraphSession, step: number): Runner {
  return {
    runSlices: async (feeds, n, outputs) => {
      const out: Fetches[] = [];
      for (let start = 0; start < n; start += step) {
        const m = Math.min(step, n - start);
        const part = sliceFeeds(feeds, n, start, m);
        out.push(await g.run({ ...part, ...rewardRowFeeds(part.reference!.data, m) }, outputs));
      }
      return out;
    },
    release: () => g.release(),
  };
}

export class RewardScorer {
  private readonly sessions = new Map<string, Promise<Runner>>();
  encoderName = '';

  constructor(
    /** The reward config's encoder fields (pass `config.reward`). */
    private readonly encoder: EncoderChoice | undefined,
    private readonly device: Device = 'cpu',
    private readonly opts: RewardScorerOptions = {},
  ) {}

  private session(height: number, width: number): Promise<Runner> {
    const key = `${height}x${width}`;
    let s = this.sessions.get(key);
    if (!s) {
      // On the CPU the batch runs in slices (SSIM_LANE_RUN_BATCH items on several lanes, SSIM_RUN_BATCH on one): the
      // SSIM filter's intermediate tensors then stay in cache (docs/performance-history/ssim.md), and the slices of a large image
      // spread over the lanes.
      // Every item is scored on its own, so slicing changes no value. On one lane (every image below
      // LANE_MIN_PIXELS), the graph encodes each slice's distinct references once (sharedReferenceRunner).
      const big = height * width >= (this.opts.laneMinPixels ?? LANE_MIN_PIXELS);
      const lanes = this.device !== 'cpu' ? 0 : big ? (this.opts.lanes ?? lanesFor()) : 1;
      // Several lanes run one pair at a time, for which SSIM's plain filter is the faster one (ssim.ts).
      s = rewardModel({ height, width }, this.encoder, { sharedReferences: lanes === 1, ssimFold: lanes <= 1 }).then(async ({ bytes, encoder }): Promise<Runner> => {
        this.encoderName = encoder.name;
        if (this.device !== 'cpu') {
          // On a GPU the whole batch is one run.
          const g = await GraphSession.create(bytes, { device: this.device, name: 'reward' });
          return { runSlices: async (feeds, _n, outputs) => [await g.run(feeds, outputs)], release: () => g.release() };
        }
        if (lanes === 1) return sharedReferenceRunner(await GraphSession.create(bytes, { device: 'cpu', name: 'reward' }), big ? SSIM_RUN_BATCH : SMALL_RUN_BATCH);
        const l = await SessionLanes.create(bytes, lanes, 'reward');
        return { runSlices: (feeds, n, outputs) => l.runSlices(feeds, n, SSIM_LANE_RUN_BATCH, outputs), release: () => l.release() };
      });
      this.sessions.set(key, s);
      s.catch(() => this.sessions.delete(key));
    }
    return s;
  }

  /**
   * Scores the batch. Throws a ScoreError for a batch of no items, images smaller than the SSIM window,
   * arrays of the wrong size, or a non-finite score. A non-finite input value always gives a non-finite
   * SSIM (every pixel lies in a valid window, every Gaussian tap is positive, and NaN or Inf in a window's
   * statistics makes its SSIM NaN), so the inputs are searched only for an item whose score is not finite,
   * and the error then names the input value.
   */
  async score(b: ScoreBatch, wantMap = false): Promise<Scores> {
    const dims = [b.n, 3, b.height, b.width];
    if (!Number.isInteger(b.n) || b.n < 1) throw new ScoreError('bad_input', undefined, `candidates: has no candidates (n = ${b.n})`);
    if (!Number.isInteger(b.height) || !Number.isInteger(b.width) || b.height < SSIM_WINDOW || b.width < SSIM_WINDOW) {
      throw new ScoreError('bad_input', undefined, `candidates: ${b.height}x${b.width} is smaller than the ${SSIM_WINDOW}x${SSIM_WINDOW} SSIM window`);
    }
    const expected = b.n * 3 * b.height * b.width;
    if (b.candidates.length !== expected || b.references.length !== expected) {
      throw new ScoreError('bad_input', undefined, `candidates (${b.candidates.length} values) and references (${b.references.length}) must both be [${dims}]`);
    }
    const session = await this.session(b.height, b.width);
    const outputs = wantMap ? ['ssim', 'clip_cos', 'ssim_map'] : ['ssim', 'clip_cos'];
    const slices = await session.runSlices({ candidate: { data: b.candidates, dims }, reference: { data: b.references, dims } }, b.n, outputs);
    const scores: Scores = { ssim: new Float32Array(b.n), clip_cos: new Float32Array(b.n) };
    let at = 0;
    for (const out of slices) {
      const m = out.ssim!.data.length;
      for (const name of ['ssim', 'clip_cos'] as const) {
        const bad = out[name]!.data.findIndex((v) => !Number.isFinite(v));
        if (bad >= 0) throw this.nonFinite(b, at + bad, name, out[name]!.data[bad]!);
        scores[name].set(out[name]!.data, at);
      }
      if (wantMap) {
        const map = out.ssim_map!.data;
        if (slices.length === 1) scores.ssim_map = map;
        else (scores.ssim_map ??= new Float32Array(b.n * (map.length / m))).set(map, at * (map.length / m));
      }
      at += m;
    }
    return scores;
  }

  /** The error for item `i` whose `name` came out `value`: names a non-finite input value of the item if it has one. */
  private nonFinite(b: ScoreBatch, i: number, name: string, value: number): ScoreError {
    const per = 3 * b.height * b.width;
    for (const [what, t] of [['candidates', b.candidates], ['references', b.references]] as const) {
      const item = t.subarray(i * per, (i + 1) * per);
      const bad = item.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) return new ScoreError('non_finite', i, `${what}[${i}]: value ${item[bad]} at flat index ${bad} is not finite`);
    }
    return new ScoreError('non_finite', i, `${name} of item ${i} is ${value} (its inputs are finite)`);
  }

  async close(): Promise<void> {
    for (const s of this.sessions.values()) await (await s).release();
    this.sessions.clear();
  }
}
