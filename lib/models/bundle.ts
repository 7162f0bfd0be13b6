// Everything a role needs to run the models of one run configuration: the policy spec, the resolution,
// and the serialised graphs. One place, so every role builds the same graphs from the same config.
import type { RunConfig } from '../config/index.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';
import { modelOpset, serialize } from '../graph/onnx.ts';
import { buildGrpoGraph, buildPolicyGraph, buildRewardBackpropGraph, buildRewardGraph, buildSftGraph, type Resolution } from './graphs.ts';
import { policyParams, type PolicySpec } from './policy.ts';
import { loadEncoder, type EncoderModel } from './reward.ts';
import { BUILTIN_ENCODER_NAME } from './encoder.ts';

export function policySpecOf(config: RunConfig): PolicySpec {
  return { ...config.model };
}

export function resolutionOf(config: RunConfig): Resolution {
  return { height: config.data.size, width: config.data.size };
}

/** Expected parameter names and shapes, for checking checkpoints. */
export function paramShapes(spec: PolicySpec): Map<string, number[]> {
  return new Map(policyParams(spec).map((p) => [p.name, p.shape]));
}

export const policyModel = (config: RunConfig, resolution: Resolution = resolutionOf(config)): Uint8Array => serialize(buildPolicyGraph(policySpecOf(config), resolution));
export const grpoModel = (config: RunConfig): Uint8Array => serialize(buildGrpoGraph(policySpecOf(config), resolutionOf(config), config.grpo.advantageMode));
export const sftModel = (config: RunConfig): Uint8Array => serialize(buildSftGraph(policySpecOf(config), resolutionOf(config), config.sft.loss));

/** Direct reward backprop (a reference, not GRPO): refused unless the run uses the built-in encoder. */
export const rewardBackpropModel = (config: RunConfig): Uint8Array =>
  serialize(buildRewardBackpropGraph(policySpecOf(config), resolutionOf(config), config.reward.clipModel ?? BUILTIN_ENCODER_NAME));

export function standalonePolicyModel(config: RunConfig, params: TensorMap): Uint8Array {
  return serialize(buildPolicyGraph(policySpecOf(config), resolutionOf(config), params), {
    docString: 'recovery-grpo policy with baked weights: image [N,3,H,W] in [0,1], noise [N,3,H,W] -> mean, action, logp',
  });
}

export async function rewardModel(resolution: Resolution, clipModel?: string): Promise<{ bytes: Uint8Array; encoder: EncoderModel }> {
  const encoder = await loadEncoder(clipModel);
  const opset = Math.max(17, modelOpset(encoder.bytes, encoder.name));
  return { bytes: serialize(buildRewardGraph(resolution, { encoder: encoder.bytes, encoderName: encoder.name }, opset), { metadata: { encoder: encoder.name } }), encoder };
}
