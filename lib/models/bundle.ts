// Everything a role needs to run the models of one run configuration: the policy spec, the resolution,
// and the serialised graphs. One place, so every role builds the same graphs from the same config.
import type { RunConfig } from '../config/index.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';
import { modelOpset, serialize } from '../graph/onnx.ts';
import { buildGrpoGraph, buildPolicyGraph, buildRewardBackpropGraph, buildRewardGraph, buildSftGraph, type Resolution } from './graphs.ts';
import { policyParams, type PolicySpec } from './policy.ts';
import { differentiableEncoder, loadEncoder, PREPROCESS, type EncoderChoice, type EncoderModel } from './reward.ts';

export function policySpecOf(config: RunConfig): PolicySpec {
  const { network, ...model } = config.model;
  // an imported network is specialised to the run's resolution (its dynamic spatial sizes fixed)
  return network ? { ...model, network: { ...network, height: config.data.size, width: config.data.size } } : model;
}

export function resolutionOf(config: RunConfig): Resolution {
  return { height: config.data.size, width: config.data.size };
}

/** Expected parameter names and shapes, for checking checkpoints. */
export function paramShapes(spec: PolicySpec): Map<string, number[]> {
  return new Map(policyParams(spec).map((p) => [p.name, p.shape]));
}

export const policyModel = (config: RunConfig): Uint8Array => serialize(buildPolicyGraph(policySpecOf(config), resolutionOf(config)));
export const grpoModel = (config: RunConfig): Uint8Array => serialize(buildGrpoGraph(policySpecOf(config), resolutionOf(config), config.grpo.advantageMode));
export const sftModel = (config: RunConfig): Uint8Array => serialize(buildSftGraph(policySpecOf(config), resolutionOf(config), config.sft.loss));

/** Direct reward backprop (a reference, not GRPO): refused when the run's encoder is a user's ONNX file (forward only). */
export function rewardBackpropModel(config: RunConfig): Uint8Array {
  const encoder = differentiableEncoder(config.reward);
  return serialize(buildRewardBackpropGraph(policySpecOf(config), resolutionOf(config), encoder.name, encoder.encode, encoder.preprocess));
}

export function standalonePolicyModel(config: RunConfig, params: TensorMap): Uint8Array {
  return serialize(buildPolicyGraph(policySpecOf(config), resolutionOf(config), params), {
    docString: 'recovery-grpo policy with baked weights: image [N,3,H,W] in [0,1], noise [N,3,H,W] -> mean, action, logp',
  });
}

/** The reward graph with the encoder a config asks for (`choice`: the reward config, or a clipModel path). */
export async function rewardModel(resolution: Resolution, choice?: EncoderChoice | string): Promise<{ bytes: Uint8Array; encoder: EncoderModel }> {
  const encoder = await loadEncoder(choice);
  const opset = Math.max(17, modelOpset(encoder.bytes, encoder.name));
  const graph = buildRewardGraph(resolution, { encoder: encoder.bytes, encoderName: encoder.name, preprocess: PREPROCESS[encoder.preprocess] }, opset);
  return { bytes: serialize(graph, { metadata: { encoder: encoder.name } }), encoder };
}
