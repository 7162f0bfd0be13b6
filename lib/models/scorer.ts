// Scores candidate images against references with the reward graph: SSIM and embedding cosine per item
// (and the SSIM map when asked). One ORT session per resolution, created on first use. A non-finite
// score is an error naming the item, never a number that looks like a reward.
import type { Device } from '../graph/runtime.ts';
import { GraphSession } from '../graph/runtime.ts';
import { rewardModel } from './bundle.ts';
import type { EncoderChoice } from './reward.ts';
import { SSIM_RUN_BATCH } from './ssim.ts';

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

export class RewardScorer {
  private readonly sessions = new Map<string, Promise<GraphSession>>();
  encoderName = '';

  constructor(
    /** The reward config's encoder fields (pass `config.reward`). */
    private readonly encoder: EncoderChoice | undefined,
    private readonly device: Device = 'cpu',
  ) {}

  private session(height: number, width: number): Promise<GraphSession> {
    const key = `${height}x${width}`;
    let s = this.sessions.get(key);
    if (!s) {
      s = rewardModel({ height, width }, this.encoder).then(({ bytes, encoder }) => {
        this.encoderName = encoder.name;
        return GraphSession.create(bytes, { device: this.device });
      });
      this.sessions.set(key, s);
      s.catch(() => this.sessions.delete(key));
    }
    return s;
  }

  async score(b: ScoreBatch, wantMap = false): Promise<Scores> {
    const dims = [b.n, 3, b.height, b.width];
    const expected = b.n * 3 * b.height * b.width;
    if (b.candidates.length !== expected || b.references.length !== expected) {
      throw new Error(`score: candidates (${b.candidates.length} values) and references (${b.references.length}) must both be [${dims}]`);
    }
    const session = await this.session(b.height, b.width);
    const outputs = wantMap ? ['ssim', 'clip_cos', 'ssim_map'] : ['ssim', 'clip_cos'];
    // On the CPU the batch runs in slices of SSIM_RUN_BATCH items: the SSIM filter's intermediate tensors
    // then stay in cache (docs/performance.md). Every item is scored on its own, so slicing changes no value.
    const step = this.device === 'cpu' ? SSIM_RUN_BATCH : b.n;
    const per = 3 * b.height * b.width;
    const scores: Scores = { ssim: new Float32Array(b.n), clip_cos: new Float32Array(b.n) };
    for (let start = 0; start < b.n; start += step) {
      const m = Math.min(step, b.n - start);
      const part = (t: Float32Array) => ({ data: m === b.n ? t : t.subarray(start * per, (start + m) * per), dims: [m, 3, b.height, b.width] });
      const out = await session.run({ candidate: part(b.candidates), reference: part(b.references) }, outputs);
      for (const name of ['ssim', 'clip_cos'] as const) {
        const bad = out[name].data.findIndex((v) => !Number.isFinite(v));
        if (bad >= 0) throw new Error(`score: ${name} of item ${start + bad} is ${out[name].data[bad]} (non-finite input?)`);
        scores[name].set(out[name].data, start);
      }
      if (wantMap) {
        const map = out.ssim_map!.data;
        const mapPer = map.length / m;
        if (m === b.n) scores.ssim_map = map;
        else (scores.ssim_map ??= new Float32Array(b.n * mapPer)).set(map, start * mapPer);
      }
    }
    return scores;
  }

  async close(): Promise<void> {
    for (const s of this.sessions.values()) await (await s).release();
    this.sessions.clear();
  }
}
