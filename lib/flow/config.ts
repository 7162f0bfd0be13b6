// The flow family's configuration section, ready to be mounted in lib/config/schema.ts as `flow:` (with
// `model.family: gaussian | flow` and the two time-embedding fields beside the model's) when the family is
// wired in (docs/flow.md, "Wiring"). Defaults follow flow_grpo; a window that the step plan would refuse
// is refused here already, at load time, naming the field.

import { z } from 'zod';
import { windowStart, type FlowSamplerSpec } from './sampler.ts';
import type { VelocitySpec } from './velocity.ts';
import type { FlowSpace } from './rollout.ts';

const int = () => z.number().int();

export const flowConfigSchema = z.strictObject({
  steps: int().gte(2).default(10)
    .describe('Sampling steps of a training rollout (flow_grpo: 10).'),
  evalSteps: int().gte(1).default(40)
    .describe('ODE steps of evaluation and of the exported sampler (flow_grpo: 40).'),
  shift: z.number().gt(0).default(3)
    .describe("SD3's timestep shift s: t = s u / (1 + (s - 1) u); s > 1 spends more steps at high noise (SD3: 3)."),
  start: z.enum(['noise', 'corrupted']).default('noise')
    .describe('noise: sampling starts from pure noise at t = 1 (as Robust-U1). corrupted: from (1 - startT) y + startT eps at t = startT.'),
  startT: z.number().gt(0).lte(1).default(0.6)
    .describe('First timestep when start is corrupted.'),
  predict: z.enum(['velocity', 'residual']).default('velocity')
    .describe('What the network outputs. velocity: v itself. residual: a correction f of the corrupted image, x0_hat = y + f, v = (x_t - x0_hat) / t, so a fresh network samples the corrupted image (identity) from any start; its SFT loss is ||x0_hat - x0||^2 (t^2 times the rectified-flow loss).'),
  space: z.enum(['image', 'residual']).default('image')
    .describe('Where the flow runs. image: on 2 x - 1 of the image. residual: on the scaled residual (x - y) / scale of the corrupted image y (latent-diffusion-style data scaling), so the unit noise meets data of unit size; the image is y + scale x. Log-densities are in that space.'),
  scale: z.number().gt(0).default(0.1)
    .describe('space residual: the residual scale s (image units, [0, 1]); about the std of clean - corrupted over training pairs.'),
  inputGate: z.boolean().default(false)
    .describe('The network sees (1 - t) x_t instead of x_t: no noise at t = 1 (the first step regresses on the corrupted image alone), damped noise while the signal grows. The step formulas still use x_t.'),
  sde: z.strictObject({
    type: z.enum(['sde', 'cps']).default('sde')
      .describe("sde: Flow-GRPO's reverse SDE, std = a sqrt(t / (1 - t)) sqrt(-dt). cps: coefficients-preserving, std = t_next sin(a pi / 2)."),
    a: z.number().gt(0).default(0.7)
      .describe('Noise level a of the SDE steps (flow_grpo: 0.7 for SD3, 1.3 for BAGEL; cps needs a < 1).'),
    window: z.strictObject({
      size: int().gte(1).default(2)
        .describe('SDE (trained) steps per rollout; the others are ODE steps (MixGRPO, Flow-GRPO-Fast: 2-3).'),
      start: z.union([int().gte(0), z.literal('random')]).default('random')
        .describe("First SDE step, or 'random': drawn per group among the starts that keep the window in the high-noise first half."),
    }).prefault({}).describe('The SDE window: which steps of a rollout are stochastic and trained.'),
    lastStepSde: z.boolean().default(false)
      .describe("The last step (never trained) samples with the SDE instead of the ODE, as flow_grpo's sampler does (it samples every step with the SDE); with window { start: 0, size: steps - 1 } the training rollout is flow_grpo's."),
    trainLastStep: z.boolean().default(false)
      .describe("The window includes the last step (t_next = 0), which is then an SDE step and trained (sde only; the window must be numeric and end at the last step, start = steps - size). Its noise is added after the network's last evaluation, so it reaches the image whatever the network learns; a trained step earlier in the rollout reaches it only through the network, which Flow-GRPO teaches to ignore the state (docs/flow.md, \"Round 34: flow34\"). false (default): the last step is never trained, as flow_grpo."),
  }).prefault({}).describe('The stochastic steps of a training rollout (Flow-GRPO).'),
  klForm: z.enum(['exact', 'flow_grpo']).default('exact')
    .describe("The KL term of the Flow-GRPO loss (weight grpo.beta). exact: the KL between the policy's and the reference's step Gaussians, mean((mean - ref_mean)^2) / (2 std^2) with the step's std (sde: s_t sqrt(-dt)). flow_grpo: as flow_grpo's train_sd3.py writes it, / (2 s_t^2) without the -dt, i.e. the exact KL times -dt on sde steps (15-28x smaller at the defaults), so that grpo.beta means what flow_grpo's beta means. cps: the two are the same."),
  timeFrequencies: int().gte(1).default(8)
    .describe('Sinusoidal frequencies of the time embedding (2x features: sin and cos).'),
  timeWidth: int().gte(1).default(32)
    .describe('Width of the shared time embedding.'),
}).superRefine((f, ctx) => {
  try {
    windowStart(f.steps, f.sde.window, 0, f.sde.trainLastStep);
  } catch (e) {
    ctx.addIssue({ code: 'custom', path: ['sde', 'window'], message: (e as Error).message });
  }
  if (f.sde.type === 'cps' && f.sde.a >= 1) ctx.addIssue({ code: 'custom', path: ['sde', 'a'], message: `must be < 1 for the cps sampler, got ${f.sde.a}` });
  if (f.sde.type === 'cps' && f.sde.trainLastStep) ctx.addIssue({ code: 'custom', path: ['sde', 'trainLastStep'], message: 'needs the sde sampler (the cps step has std 0 at t_next = 0)' });
}).describe('The flow-matching family (model.family = flow): sampler, SDE window and time embedding.');

export type FlowConfig = z.output<typeof flowConfigSchema>;

export function samplerSpecOf(f: FlowConfig): FlowSamplerSpec {
  return { type: f.sde.type, steps: f.steps, a: f.sde.a, shift: f.shift, window: { ...f.sde.window }, start: f.start, startT: f.startT, ...(f.sde.lastStepSde ? { lastStepSde: true } : {}), ...(f.sde.trainLastStep ? { trainLastStep: true } : {}) };
}

export function velocitySpecOf(model: { arch: 'resnet' | 'unet'; width: number; depth: number }, f: FlowConfig): VelocitySpec {
  return {
    arch: model.arch, width: model.width, depth: model.depth, timeFrequencies: f.timeFrequencies, timeWidth: f.timeWidth,
    ...(f.predict === 'residual' ? { predict: f.predict } : {}), ...(f.space === 'residual' ? { space: f.space } : {}), ...(f.inputGate ? { inputGate: true } : {}),
  };
}

/** How images map to the flow's state and back (flow.space, flow.scale; rollout.ts's FlowSpace). */
export function flowSpaceOf(f: Pick<FlowConfig, 'space' | 'scale'>): FlowSpace {
  return f.space === 'residual' ? { kind: 'residual', scale: f.scale } : { kind: 'image' };
}
