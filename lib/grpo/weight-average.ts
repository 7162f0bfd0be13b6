// grpo.ema: a moving average of the weights over the GRPO phase (Polyak/EMA averaging). GRPO's gain over its
// warm start on the built-in photographs is about the size of its step-to-step wander (docs/data-history.md, rounds 8-9),
// so the policy published after GRPO is the average while the rollouts keep sampling from the trained weights.
// The single-process loop and the learner share these rules: the average starts at the parameters GRPO starts
// from (when the KL reference is taken), takes one update per applied GRPO step, and replaces the parameters
// at the last GRPO batch (seq sft.steps + grpo.steps), whose version is the run's final checkpoint.
import type { RunConfig } from '../config/index.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';
import { ParamEma, type AverageState } from '../optim/ema.ts';

/** The run's GRPO average (undefined with grpo.ema 0), from `params` or, resuming, from a saved state. */
export function grpoAverage(config: Pick<RunConfig, 'grpo'>, params: TensorMap, saved?: AverageState): ParamEma | undefined {
  if (config.grpo.ema <= 0) return undefined;
  return new ParamEma(saved?.shadow ?? params, config.grpo.ema, { warmup: config.grpo.emaWarmup, updates: saved?.updates ?? 0 });
}

/** The batch seq of the run's last GRPO batch: its version publishes the average. */
export function lastGrpoSeq(config: Pick<RunConfig, 'sft' | 'grpo'>): number {
  return config.sft.steps + config.grpo.steps;
}
