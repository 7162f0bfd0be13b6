// The two training updates, shared by the learner and the single-process loop so both apply exactly the
// same step: the SFT step at its scheduled learning rate, and the GRPO step with the reference forward
// (skipped at beta 0) and the explicit hyper-parameters of `grpoHyper`. The learner passes a `screen` (its
// same-version check on logp_old, logp-check.ts); the single-process loop has no untrusted rows and passes none.
import type { TensorMap } from '../checkpoint/tensors.ts';
import type { PolicyRunner } from '../models/runner.ts';
import type { GrpoInputs, GrpoStepResult, PolicyTrainer } from '../models/trainer.ts';
import type { FlowGrpoInputs, FlowGrpoStepResult, FlowRunner, FlowTrainer } from '../flow/family.ts';
import { needsReferenceForward, type GrpoHyper } from './algorithm.ts';
import type { GrpoScreen } from './logp-check.ts';
import { trace } from '../log/trace.ts';

/** The frozen KL reference: its parameters and a runner for its forward pass (created when first needed). */
export interface ReferencePolicy {
  params: TensorMap;
  runner(): Promise<PolicyRunner>;
}

/** One GRPO update; at beta 0 no reference forward runs and kl is reported as 0. */
export async function grpoUpdate(trainer: PolicyTrainer, reference: ReferencePolicy, batch: Omit<GrpoInputs, 'refMean'>, hyper: GrpoHyper, screen?: GrpoScreen): Promise<GrpoStepResult> {
  if (!needsReferenceForward(hyper)) {
    // ref_mean is multiplied by beta = 0: any finite tensor of the right shape will do
    const r = await trainer.grpoStep({ ...batch, refMean: batch.images }, hyper, screen);
    return { ...r, kl: 0 };
  }
  // the runner computes the network once per distinct image of the batch (a group's G rows share one). Only the
  // mean is fetched (PolicyRunner.mean): the same values as run()'s mean, without copying out the action, logp and
  // logp_map outputs the step never reads (three [n,3,H,W] arrays per batch; docs/performance-history/pipeline.md,
  // "Round 28: lcpu28")
  const refMean = await (await reference.runner()).mean(reference.params, batch.images, batch.n);
  trace('ref_forward');
  return trainer.grpoStep({ ...batch, refMean }, hyper, screen);
}

/** The flow family's reference: its parameters and a runner for the step means of the reference. */
export interface FlowReferencePolicy {
  params: TensorMap;
  runner(): Promise<FlowRunner>;
}

/**
 * One Flow-GRPO update over the batch's trained steps (one graph run: the loss is the rows' mean, i.e. the
 * gradients accumulated over the trained steps); at beta 0 no reference forward runs and kl is reported as 0.
 */
export async function flowGrpoUpdate(trainer: FlowTrainer, reference: FlowReferencePolicy, batch: FlowGrpoInputs, hyper: GrpoHyper, screen?: GrpoScreen): Promise<FlowGrpoStepResult> {
  if (!needsReferenceForward(hyper)) {
    const r = await trainer.grpoStep({ ...batch, refMean: batch.flow.x }, hyper, screen);
    return { ...r, kl: 0, perStep: r.perStep.map((s) => ({ ...s, kl: 0 })) };
  }
  const refMean = await (await reference.runner()).referenceMean(reference.params, batch);
  return trainer.grpoStep({ ...batch, refMean }, hyper, screen);
}
