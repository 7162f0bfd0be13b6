// PolicyRunner: the policy graph that samples actions (rollout workers, evaluation, the single-process loop,
// the learner's KL reference). Parameters are feeds, so a new policy version is just a new TensorMap: no
// session is rebuilt.
import type { RunConfig } from '../config/index.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';
import { GraphSession, type Fetches } from '../graph/runtime.ts';
import type { Device } from '../graph/device.ts';
import { policyModel, resolutionOf } from './bundle.ts';
import { paramFeeds, sharedRowFeeds } from './feeds.ts';
import type { Resolution } from './graphs.ts';

export interface PolicyOutputs {
  mean: Float32Array;
  action: Float32Array;
  logp: Float32Array;
  /** Per-element log-density [n,3,H,W] (dense advantages need it as the behaviour log-probability). */
  logpMap: Float32Array;
}

export class PolicyRunner {
  private constructor(
    private readonly session: GraphSession,
    readonly height: number,
    readonly width: number,
  ) {}

  /** `resolution`: another image size than the training one (the policy is fully convolutional). */
  static async create(config: RunConfig, device: Device = 'cpu', resolution: Resolution = resolutionOf(config)): Promise<PolicyRunner> {
    const r = resolution;
    return new PolicyRunner(await GraphSession.create(policyModel(config, r, { sharedRows: true }), { device, name: 'policy' }), r.height, r.width);
  }

  /**
   * Runs n images [n,3,H,W] with noise [n,3,H,W] under `params`. The network runs once per run of equal
   * consecutive images (a group's G actions): the same bytes as once per row.
   */
  async run(params: TensorMap, images: Float32Array, noise: Float32Array, n: number): Promise<PolicyOutputs> {
    const out = await this.fetch(params, images, noise, n);
    return { mean: out.mean!.data, action: out.action!.data, logp: out.logp!.data, logpMap: out.logp_map!.data };
  }

  /**
   * run() fetching only what a rollout sends: action and logp, and logpMap when `withLogpMap` (dense advantages).
   * The unfetched outputs are not copied out of the session ([n,3,H,W] each); the values are run()'s.
   */
  async sample(params: TensorMap, images: Float32Array, noise: Float32Array, n: number, withLogpMap: boolean): Promise<Pick<PolicyOutputs, 'action' | 'logp'> & { logpMap?: Float32Array }> {
    const out = await this.fetch(params, images, noise, n, withLogpMap ? ['action', 'logp', 'logp_map'] : ['action', 'logp']);
    return { action: out.action!.data, logp: out.logp!.data, ...(withLogpMap ? { logpMap: out.logp_map!.data } : {}) };
  }

  /** The policy network's mean [n,3,H,W] of n images under `params` (the noise is not read into it: zeros). */
  async mean(params: TensorMap, images: Float32Array, n: number): Promise<Float32Array> {
    return (await this.fetch(params, images, new Float32Array(images.length), n, ['mean'])).mean!.data;
  }

  /** The policy graph's `outputs` (default all) for n images with their noise. */
  private fetch(params: TensorMap, images: Float32Array, noise: Float32Array, n: number, outputs?: readonly string[]): Promise<Fetches> {
    const dims = [n, 3, this.height, this.width];
    return this.session.run({ ...paramFeeds(params), ...sharedRowFeeds(images, n), image: { data: images, dims }, noise: { data: noise, dims } }, outputs);
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

