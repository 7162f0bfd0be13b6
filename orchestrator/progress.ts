// The run's progress as people and the web page see it: one line per acknowledged batch (formatProgress),
// the throughput of each phase, and the GRPO batches' reward metrics (the orchestrator owns those; the
// learner owns the training metrics).
import { meanStd, ZERO_VARIANCE_STD } from '../lib/grpo/advantages.ts';
import type { Components } from '../lib/grpo/reward-expression.ts';
import type { Metrics } from '../lib/metrics/index.ts';
import type { TrainResult__Output } from '../lib/transport/index.ts';
import type { Progress } from './run-state.ts';

const f = (x: number | undefined, digits = 4) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits));

export function formatProgress(p: Progress): string {
  const head = `[${p.phase === 'done' ? 'grpo' : p.phase}] batch ${p.seq}/${p.totalSeq} v${p.version} loss ${f(p.loss, 5)}`;
  if (p.reward === undefined) return `${head} | ${p.samplesPerSecond.toFixed(1)} samples/s`;
  const comps = Object.entries(p.components ?? {}).map(([k, v]) => `${k} ${f(v)}`).join(' ');
  return `${head} reward ${f(p.reward)} (${comps}) kl ${f(p.kl, 6)} clip ${f(p.clipFraction, 3)} | ${p.samplesPerSecond.toFixed(1)} actions/s`;
}

const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);

export class ProgressMeter {
  private sftStart = 0;
  private grpoStart = 0;
  private grpoActions = 0;
  private lastReward?: { reward: number; components: Record<string, number> };

  constructor(private readonly metrics: Metrics, private readonly sftBatchSize: number, private readonly totalSeq: number) {}

  started(kind: 'sft' | 'grpo'): void {
    if (kind === 'sft') this.sftStart ||= Date.now();
    else this.grpoStart ||= Date.now();
  }

  /** A GRPO batch was assembled: `all` its groups (kept or not), `kept` those trained, with their advantages. */
  rewards(all: ReadonlyArray<{ rewards?: readonly number[] }>, kept: ReadonlyArray<{ rewards: readonly number[]; components: readonly Components[] }>, advantages: Float32Array): void {
    const m = this.metrics;
    if (kept.length) {
      const names = Object.keys(kept[0]!.components[0]!);
      const components = Object.fromEntries(names.map((k) => [k, mean(kept.flatMap((g) => g.components.map((c) => c[k]!)))]));
      this.lastReward = { reward: mean(kept.flatMap((g) => g.rewards)), components };
      m.get('reward_mean').set(this.lastReward.reward);
      for (const [name, v] of Object.entries(components)) m.get('reward_component_mean').set({ component: name }, v);
      m.get('advantage_std').set(meanStd(Array.from(advantages)).std);
    }
    const zeroVar = all.filter((g) => g.rewards && meanStd(g.rewards).std < ZERO_VARIANCE_STD).length;
    m.get('zero_variance_group_fraction').set(zeroVar / all.length);
  }

  /**
   * Batch `seq` was acknowledged (`actions`: the GRPO actions it trained); `phase` is the run's phase now. The
   * progress carries the batch's own phase (its `kind`), or 'done' after the run's last batch: the last SFT batch's
   * acknowledgement finds the run already in GRPO, and its line was labelled `[grpo]`.
   */
  acknowledged(phase: Progress['phase'], seq: number, kind: 'sft' | 'grpo', version: number, actions: number, r?: TrainResult__Output): Progress {
    const grpo = kind === 'grpo';
    if (grpo) this.grpoActions += actions;
    const elapsed = (Date.now() - (grpo ? this.grpoStart : this.sftStart)) / 1000;
    const samples = grpo ? this.grpoActions : seq * this.sftBatchSize;
    return {
      phase: phase === 'done' ? 'done' : kind, seq, totalSeq: this.totalSeq, version, loss: r?.loss ?? NaN,
      kl: grpo ? r?.kl : undefined,
      clipFraction: grpo ? r?.clip_fraction : undefined,
      ...(grpo && r?.flow_steps.length ? { flowSteps: r.flow_steps.map((s) => ({ step: s.index, clipFraction: s.clip_fraction, kl: s.kl })) } : {}),
      reward: grpo ? this.lastReward?.reward : undefined,
      components: grpo ? this.lastReward?.components : undefined,
      samplesPerSecond: elapsed > 0 ? samples / elapsed : 0,
    };
  }
}
