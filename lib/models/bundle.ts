// Everything a role needs to run the models of one run configuration: the policy spec, the resolution,
// and the serialised graphs. One place, so every role builds the same graphs from the same config.
import type { RunConfig } from '../config/index.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';
import { modelOpset, serialize } from '../graph/onnx.ts';
import { buildGrpoGraph, buildPolicyGraph, buildRewardBackpropGraph, buildRewardGraph, buildSftGraph, type Resolution, type SharedRowsOption } from './graphs.ts';
import { initPolicyParams, policyParams, type PolicySpec } from './policy.ts';
import { standardNormal } from '../data/random.ts';
import { flowSpaceOf, samplerSpecOf, velocitySpecOf } from '../flow/config.ts';
import { buildFlowGrpoGraph, buildFlowOdeSamplerGraph, buildFlowSftGraph, buildFlowStepGraph } from '../flow/graphs.ts';
import { odePlan } from '../flow/sampler.ts';
import { flowNetworkParams, flowNetworkSpecOf, initFlowNetworkParams } from '../flow/velocity-network.ts';
import { checkImportedNetwork } from './imported-policy.ts';
import { differentiableEncoder, loadEncoder, PREPROCESS, type EncoderChoice, type EncoderModel } from './reward.ts';

/**
 * `resolution`: an imported network is specialised to one resolution (its dynamic spatial sizes fixed); the
 * training size by default, a whole photograph's size for evaluation (its parameters do not change).
 */
export function policySpecOf(config: RunConfig, resolution: Resolution = resolutionOf(config)): PolicySpec {
  const { network, ...model } = config.model;
  return network ? { ...model, network: { ...network, height: resolution.height, width: resolution.width } } : model;
}

export function resolutionOf(config: RunConfig): Resolution {
  return { height: config.data.size, width: config.data.size };
}

/** Expected parameter names and shapes, for checking checkpoints. */
export function paramShapes(spec: PolicySpec): Map<string, number[]> {
  return new Map(policyParams(spec).map((p) => [p.name, p.shape]));
}

// model.family = flow (docs/flow.md): the same entry points hand out the flow family's graphs, the
// sampling step for the rollout, the Flow-GRPO and rectified-flow graphs for training, the unrolled ODE
// sampler for export.
const flowSpec = (config: RunConfig, resolution: Resolution = resolutionOf(config)) => flowNetworkSpecOf(velocitySpecOf(config.model, config.flow), config.model.network, resolution);
const isFlow = (config: RunConfig) => config.model.family === 'flow';

/** Expected parameter names and shapes of the run's family, for checking checkpoints. */
export function paramShapesOf(config: RunConfig): Map<string, number[]> {
  return isFlow(config) ? new Map(flowNetworkParams(flowSpec(config)).map((p) => [p.name, p.shape])) : paramShapes(policySpecOf(config));
}

/** The run's initial parameters (seeded by run.seed). */
export function initialParamsOf(config: RunConfig): TensorMap {
  return isFlow(config) ? initFlowNetworkParams(flowSpec(config), config.run.seed) : initPolicyParams(policySpecOf(config), config.run.seed);
}

/**
 * The run's initial parameters with every all-zero tensor (biases, zero-initialised last layers) given small noise,
 * 0.01 x standard normal, the k-th such tensor drawn with seed `seed + k`: inputs for device checks and profiles, whose
 * graphs would otherwise see exact zeros there (trivially zero outputs and gradients). Never a training start.
 */
export function initialParamsWithNoiseOf(config: RunConfig, seed = 100): TensorMap {
  const params = initialParamsOf(config);
  let k = seed;
  for (const p of params.values()) if (p.data.length && p.data.every((v) => v === 0)) p.data.set(standardNormal(p.data.length, k++).map((v) => v * 0.01));
  return params;
}

// `sharedRows` (the gaussian family's own sessions, runner.ts and trainer.ts): the network runs once per distinct
// image row; the exported graphs (cli export) keep the plain contract of docs/graphs.md.
export const policyModel = (config: RunConfig, resolution: Resolution = resolutionOf(config), o: SharedRowsOption = {}): Uint8Array => serialize(isFlow(config)
  ? buildFlowStepGraph(flowSpec(config, resolution), resolution, config.flow.sde.type)
  : buildPolicyGraph(policySpecOf(config, resolution), resolution, undefined, o));
export const grpoModel = (config: RunConfig, o: SharedRowsOption = {}): Uint8Array => serialize(isFlow(config)
  ? buildFlowGrpoGraph(flowSpec(config), resolutionOf(config), config.flow.sde.type, config.grpo.advantageMode, config.flow.klForm)
  : buildGrpoGraph(policySpecOf(config), resolutionOf(config), config.grpo.advantageMode, config.grpo.identityAnchor > 0, o));
export const sftModel = (config: RunConfig): Uint8Array => serialize(isFlow(config)
  ? buildFlowSftGraph(flowSpec(config), resolutionOf(config))
  : buildSftGraph(policySpecOf(config), resolutionOf(config), config.sft.loss));

/** Direct reward backprop (a reference, not GRPO): refused when the run's encoder is a user's ONNX file (forward only). */
export function rewardBackpropModel(config: RunConfig): Uint8Array {
  const encoder = differentiableEncoder(config.reward);
  return serialize(buildRewardBackpropGraph(policySpecOf(config), resolutionOf(config), encoder.name, encoder.encode, encoder.preprocess));
}

export function standalonePolicyModel(config: RunConfig, params: TensorMap): Uint8Array {
  if (isFlow(config)) {
    const f = samplerSpecOf(config.flow);
    const plan = odePlan(config.flow.evalSteps, f.shift, f.start === 'noise' ? 1 : f.startT);
    return serialize(buildFlowOdeSamplerGraph(flowSpec(config), resolutionOf(config), params, plan, { start: f.start, space: flowSpaceOf(config.flow) }), {
      docString: `recovery-grpo flow sampler with baked weights (ODE, ${config.flow.evalSteps} steps): image [N,3,H,W] in [0,1], noise [N,3,H,W] ~ N(0,1) -> restored [N,3,H,W] in image space`,
    });
  }
  return serialize(buildPolicyGraph(policySpecOf(config), resolutionOf(config), params), {
    docString: 'recovery-grpo policy with baked weights: image [N,3,H,W] in [0,1], noise [N,3,H,W] -> mean, action, logp',
  });
}

/** The reward graph with the encoder a config asks for (`choice`: the reward config, or a clipModel path). */
export async function rewardModel(resolution: Resolution, choice?: EncoderChoice | string, o: { sharedReferences?: boolean; ssimFold?: boolean } = {}): Promise<{ bytes: Uint8Array; encoder: EncoderModel }> {
  const encoder = await loadEncoder(choice);
  const opset = Math.max(17, modelOpset(encoder.bytes, encoder.name));
  const graph = buildRewardGraph(resolution, { encoder: encoder.bytes, encoderName: encoder.name, preprocess: PREPROCESS[encoder.preprocess], sharedReferences: o.sharedReferences, ssimFold: o.ssimFold }, opset);
  return { bytes: serialize(graph, { metadata: { encoder: encoder.name } }), encoder };
}

/**
 * The start-up check of the run's imported network (model.network; nothing for a built-in one): the import
 * command's forward check against onnxruntime, refused with a SetupError. Every process that uses the network
 * awaits it once, at its entry point, before it joins a run: orchestrator/main.ts, the worker runtime at the Welcome,
 * runSingleProcess and runRewardBackprop (the demo, experiments), runFlowLoop, the eval and export commands. Data
 * code (openRunDataset) does none. The check and importedPolicy use the same bytes of the file, read once per
 * process; importedPolicy then runs no onnxruntime work (lib/models/imported-policy.ts).
 */
export async function checkNetworkOf(config: RunConfig): Promise<void> {
  const { network } = config.model;
  if (network) await checkImportedNetwork({ ...network, ...resolutionOf(config) });
}
