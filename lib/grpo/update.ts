// The two training updates, shared by the learner and the single-process loop so both apply exactly the
// same step: the SFT step at its scheduled learning rate, and the GRPO step with the reference forward
// (skipped at beta 0) and the explicit hyper-parameters of `grpoHyper`.
import type { TensorMap } from '../checkpoint/tensors.ts';
import type { PolicyRunner } from '../models/runner.ts';
import type { GrpoInputs, GrpoStepResult, PolicyTrainer } from '../models/trainer.ts';
import type { FlowGrpoInputs, FlowGrpoStepResult, FlowRunner, FlowTrainer } from '../flow/family.ts';
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
  const refMean = await referenceMean(await reference.runner(), reference.params, batch.images, batch.n);
  return trainer.grpoStep({ ...batch, refMean }, hyper);
}

/**
 * The reference policy's mean for each of the `n` images [n,3,H,W]. The G actions of a group share one corrupted
 * image, so the forward runs once per run of equal consecutive rows (byte-equal) and its row is copied to each of
 * them. The policy forward computes each row on its own (test/grpo/reference-mean.test.ts: the same bytes as the
 * forward over all n rows, at 1 and 2 onnxruntime threads), so this gives exactly what the full forward gives.
 */
export async function referenceMean(runner: Pick<PolicyRunner, 'run'>, params: TensorMap, images: Float32Array, n: number): Promise<Float32Array> {
  if (!Number.isInteger(n) || n < 1 || images.length % n !== 0) throw new Error(`referenceMean: ${images.length} image values do not split into n = ${n} rows`);
  const px = images.length / n;
  const bytes = Buffer.from(images.buffer, images.byteOffset, images.byteLength);
  const row = (i: number) => bytes.subarray(i * px * 4, (i + 1) * px * 4);
  // source[i]: the distinct row that image i is a copy of
  const source = new Int32Array(n);
  const firsts: number[] = [0];
  for (let i = 1; i < n; i++) {
    if (row(i).equals(row(firsts.at(-1)!))) source[i] = firsts.length - 1;
    else source[i] = firsts.push(i) - 1;
  }
  if (firsts.length === n) return (await runner.run(params, images, new Float32Array(images.length), n)).mean;
  const distinct = new Float32Array(firsts.length * px);
  firsts.forEach((i, k) => distinct.set(images.subarray(i * px, (i + 1) * px), k * px));
  const mean = (await runner.run(params, distinct, new Float32Array(distinct.length), firsts.length)).mean;
  const out = new Float32Array(images.length);
  for (let i = 0; i < n; i++) out.set(mean.subarray(source[i]! * px, (source[i]! + 1) * px), i * px);
  return out;
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
export async function flowGrpoUpdate(trainer: FlowTrainer, reference: FlowReferencePolicy, batch: FlowGrpoInputs, hyper: GrpoHyper): Promise<FlowGrpoStepResult> {
  if (!needsReferenceForward(hyper)) {
    const r = await trainer.grpoStep({ ...batch, refMean: batch.flow.x }, hyper);
    return { ...r, kl: 0, perStep: r.perStep.map((s) => ({ ...s, kl: 0 })) };
  }
  const refMean = await (await reference.runner()).referenceMean(reference.params, batch);
  return trainer.grpoStep({ ...batch, refMean }, hyper);
}
