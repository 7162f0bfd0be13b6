// Evaluation during training (eval.everyVersions): the orchestrator calls `maybeRun(version)` as versions are
// acknowledged; every N versions it fetches the newest checkpoint from the CheckpointStore (verified: digest,
// names, shapes, run id, version, frozen base; the reference by the digest the checkpoint records), evaluates its policy mean on the first eval.samples held-out images beside
// identity and the reference (SFT) checkpoint (both computed once), exports eval_* gauges and keeps the result
// (numbers and a grid PNG) for the web page. It never blocks dispatch: one evaluation at a time, asynchronous;
// a due evaluation while one is still running is skipped (counted in evaluations_total{outcome="skipped"}).
import type { RunConfig } from '../config/index.ts';
import type { Sample } from '../data/dataset.ts';
import type { Metrics } from '../metrics/index.ts';
import { paramShapesOf, policySpecOf } from '../models/bundle.ts';
import { baseDigestOf } from '../models/policy.ts';
import { PolicyRunner } from '../models/runner.ts';
import { RewardScorer } from '../models/scorer.ts';
import type { CheckpointStore } from '../transport/index.ts';
import { fetchCheckpoint, klReferenceOf } from '../worker/checkpoints.ts';
import { configEvalSamples, evaluate, gridIndices, type EvalReport, type Scores } from './evaluate.ts';
import { evalGridPng } from './eval-run.ts';
import { withTimeout } from '../async/with-timeout.ts';

export interface PeriodicEvalResult {
  version: number;
  /** Unix ms when it finished. */
  t: number;
  seconds: number;
  samples: number;
  policy: EvalReport;
  identity: EvalReport;
  reference?: EvalReport & { version: number };
  /** corrupted | reference | policy | clean for the first few images. */
  gridPng: Uint8Array;
  gridColumns: string[];
}

/** The overall numbers of a result, without images or breakdowns (for histories and the event log). */
export function overall(r: Scores): { reward: number; ssim: number; clip_cos: number; psnr: number } {
  return { reward: r.reward, ssim: r.ssim, clip_cos: r.clip_cos, psnr: r.psnr };
}

export interface PeriodicEvaluatorOptions {
  config: RunConfig;
  store: CheckpointStore;
  metrics: Metrics;
  log: (line: string) => void;
  onResult?: (r: PeriodicEvalResult) => void;
  /** Rows of the grid (default 6). */
  gridRows?: number;
}

export class PeriodicEvaluator {
  private readonly every: number;
  private nextDue: number;
  private running: Promise<void> | null = null;
  private samples?: Sample[];
  private runner?: PolicyRunner;
  private scorer?: RewardScorer;
  private identity?: EvalReport;
  private ref?: { version: number; digest: string; report: EvalReport; outputs: Float32Array };
  private closed = false;
  latest: PeriodicEvalResult | null = null;

  constructor(private readonly o: PeriodicEvaluatorOptions) {
    this.every = o.config.eval.everyVersions;
    this.nextDue = this.every;
  }

  get enabled(): boolean {
    return this.every > 0;
  }

  /** Starts an evaluation when `version` reached the next multiple of eval.everyVersions (never waits for it). */
  maybeRun(version: number): void {
    if (!this.enabled || this.closed || version < this.nextDue) return;
    if (this.running) {
      this.o.metrics.get('evaluations_total').inc({ outcome: 'skipped' });
      this.nextDue = (Math.floor(version / this.every) + 1) * this.every;
      return;
    }
    this.nextDue = (Math.floor(version / this.every) + 1) * this.every;
    this.running = this.run()
      .then(
        () => this.o.metrics.get('evaluations_total').inc({ outcome: 'ok' }),
        (e: Error) => {
          this.o.metrics.get('evaluations_total').inc({ outcome: 'error' });
          this.o.log(`evaluation failed: ${e?.message ?? e}`);
        },
      )
      .finally(() => {
        this.running = null;
      });
  }

  /**
   * Waits for a running evaluation (at most `timeoutMs`), then releases the sessions. One still running then keeps
   * its sessions until it ends: releasing them under it failed the final version's evaluation with "Session
   * already disposed" whenever it outlasted the timeout (every demo of round 6).
   */
  async close(timeoutMs = 10_000): Promise<void> {
    this.closed = true;
    const release = async (): Promise<void> => {
      await this.runner?.release().catch(() => undefined);
      await this.scorer?.close().catch(() => undefined);
    };
    const running = this.running;
    if (running) {
      if ((await withTimeout(running, timeoutMs)) === 'timeout') {
        this.o.log(`evaluation still running after ${timeoutMs / 1000} s at shutdown: its sessions are released when it ends`);
        void running.then(release);
        return;
      }
    }
    await release();
  }

  /** Evaluates the newest checkpoint now (tests and maybeRun). */
  async run(): Promise<PeriodicEvalResult | null> {
    const t0 = performance.now();
    const { config, store } = this.o;
    const latest = await store.latest();
    if (!latest) return null;
    const shapes = paramShapesOf(config);
    // the frozen base this orchestrator's model.network files give (undefined for a built-in network): a checkpoint
    // trained on another base is refused, as by the learner and the rollout workers
    const pinned = { runId: config.run.id, shapes, baseDigest: baseDigestOf(policySpecOf(config)) };
    const ck = await fetchCheckpoint(store, latest, pinned);
    if (this.closed) return null;
    // eval.periodicDraws (default one): a progress curve beside training, not the final evaluation's criteria.
    this.samples ??= await configEvalSamples(config, { draws: config.eval.periodicDraws });
    if (config.model.family !== 'flow') this.runner ??= await PolicyRunner.create(config);
    // on this process's CPU: the reward workers' --device says where they score, and the orchestrator has no GPU
    this.scorer ??= new RewardScorer(config.reward, 'cpu');
    const gridRows = this.o.gridRows ?? 6;
    const reuse = { ...(this.runner ? { runner: this.runner } : {}), scorer: this.scorer, keep: gridIndices(this.samples, gridRows) };
    const policies: Parameters<typeof evaluate>[2] = { policy: { kind: 'mean', params: ck.params } };
    if (!this.identity) policies.identity = { kind: 'identity' };
    // The KL reference (the SFT warm start) is kept in the store for the whole GRPO stage. Its digest is the one the
    // checkpoint records (bound by the checkpoint's digest, which the learner signs in a signed run): the stored
    // object must match it, and a checkpoint naming a version without a digest is refused (klReferenceOf).
    const klRef = klReferenceOf(ck.meta.extra, `${store.bucket}/${ck.announcement.name}`);
    if (klRef && (this.ref?.version !== klRef.version || this.ref.digest !== klRef.digest)) {
      const ref = await fetchCheckpoint(store, klRef, pinned);
      policies.reference = { kind: 'mean', params: ref.params };
    }
    const ev = await evaluate(config, this.samples, policies, reuse);
    this.identity ??= ev.reports.identity;
    if (policies.reference && klRef) {
      // Kept only once evaluated: a failed evaluation retries the reference next time.
      this.ref = { ...klRef, report: ev.reports.reference!, outputs: ev.outputs.reference! };
    }
    const useRef = klRef !== undefined && this.ref?.version === klRef.version && this.ref.digest === klRef.digest;
    if (useRef) ev.outputs.reference = this.ref!.outputs;
    const columns = ['corrupted', ...(useRef ? ['reference'] : []), 'policy', 'clean'];
    const gridPng = await evalGridPng(config, ev, columns, gridRows);
    const result: PeriodicEvalResult = {
      version: ck.meta.version,
      t: Date.now(),
      seconds: (performance.now() - t0) / 1000,
      samples: this.samples.length,
      policy: ev.reports.policy!,
      identity: this.identity!,
      ...(useRef ? { reference: { ...this.ref!.report, version: this.ref!.version } } : {}),
      gridPng,
      gridColumns: columns,
    };
    const m = this.o.metrics;
    const rows: Array<[string, Scores | undefined]> = [['policy', result.policy], ['identity', result.identity], ['reference', result.reference]];
    for (const [policy, r] of rows) {
      if (!r) continue;
      m.get('eval_reward').set({ policy }, r.reward);
      m.get('eval_ssim').set({ policy }, r.ssim);
      m.get('eval_clip_cos').set({ policy }, r.clip_cos);
      m.get('eval_psnr').set({ policy }, r.psnr);
    }
    m.get('eval_policy_version').set(result.version);
    m.get('eval_seconds').set(result.seconds);
    this.latest = result;
    this.o.onResult?.(result);
    return result;
  }
}
