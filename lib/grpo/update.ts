// The two training updates, shared by the learner and the single-process loop so both apply exactly the
// same step: the SFT step at its scheduled learning rate, and the GRPO step with the reference forward
// (skipped at beta 0) and the explicit hyper-parameters of `grpoHyper`.
import type { TensorMap } from '../checkpoint/tensors.ts';
import type { PolicyRunner } from '../models/runner.ts';
import type { GrpoInputs, GrpoStepResult, PolicyTrainer } from '../models/trainer.ts';
import { needsReferenceForward, type GrpoHyper } from './algorithm.ts';

/** The frozen KL reference: its parameters and a runner for its forward pass (created when first needed). */
export interface ReferencePolicy {
  params: TensorMap;
  runner(): Promise<PolicyRunner>;
}

/** One GRPO update; at beta 0 no reference forward runs and kl is reported as 0. */
export async function grpoUpdate(trainer: PolicyTrainer, reference: ReferencePolicy, batch: Omit<GrpoInputs, 'refMean'>, hyper: GrpoHyper): Promise<GrpoStepResult> {
  if (!needsReferenceForward(hyper)) {
    // ref_mean is multiplied by beta = 0: any finite tensor of the right shape will do
    const r = await trainer.grpoStep({ ...batch, refMean: batch.images }, hyper);
    return { ...r, kl: 0 };
  }
  const runner = await reference.runner();
  const refMean = (await runner.run(reference.params, batch.images, new Float32Array(batch.images.length), batch.n)).mean;
  return trainer.grpoStep({ ...batch, refMean }, hyper);
}
