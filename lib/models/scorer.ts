// Scores candidate images against references with the reward graph: SSIM and embedding cosine per item
// (and the SSIM map when asked). One ORT session per resolution, created on first use. A non-finite
// score is an error naming the item, never a number that looks like a reward.
import type { Device } from '../graph/runtime.ts';
import { GraphSession } from '../graph/runtime.ts';
import { rewardModel } from './bundle.ts';
import type { EncoderChoice } from './reward.ts';

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
    const out = await session.run({ candidate: { data: b.candidates, dims }, reference: { data: b.references, dims } }, outputs);
    for (const name of ['ssim', 'clip_cos'] as const) {
      const bad = out[name].data.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new Error(`score: ${name} of item ${bad} is ${out[name].data[bad]} (non-finite input?)`);
    }
    return { ssim: out.ssim.data, clip_cos: out.clip_cos.data, ssim_map: out.ssim_map?.data };
  }

  async close(): Promise<void> {
    for (const s of this.sessions.values()) await (await s).release();
    this.sessions.clear();
  }
}
