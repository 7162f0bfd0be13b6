// Which network is the flow family's velocity field: the built-in one (velocity.ts), or a network the user
// imported (model.network, docs/import.md) with its time and condition inputs named by configuration. The
// graphs (graphs.ts) and the bundle reach the network only through these functions, so both kinds share
// every graph; velocity.ts is unchanged.
//
// An imported velocity network takes x_t [N,3,H,W] as its image input, y [N,3,H,W] as model.network.condition
// and t through model.network.time, which the graph declares as [N] or [N,1] (t itself) or [N,2F] (sinusoidal
// features of t at F frequencies, the built-in network's timeFeatures); its output is the velocity itself.

import type { Graph, Value } from '../graph/graph.ts';
import { div, mul, sub, unsqueeze } from '../graph/ops.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';
import type { Resolution } from '../models/graphs.ts';
import { frozenConstants, importedOutput, importedParamShapes, importedPolicy, initImportedParams, mergedImportedWeights, type NetworkSpec } from '../models/imported-policy.ts';
import { bakeVelocityParams, checkVelocityResolution, declareVelocityParams, initVelocityParams, timeFeatures, velocity, velocityParams, type VelocitySpec } from './velocity.ts';

/** model.network as the velocity field, specialised to one resolution. */
export interface ImportedVelocitySpec {
  kind: 'imported';
  network: NetworkSpec & { time: string; condition: string };
  predict?: VelocitySpec['predict'];
  space?: VelocitySpec['space'];
  inputGate?: boolean;
}

export type FlowNetworkSpec = VelocitySpec | ImportedVelocitySpec;

const isImported = (spec: FlowNetworkSpec): spec is ImportedVelocitySpec => 'kind' in spec && spec.kind === 'imported';

/** The run's velocity network at `r` (an imported one is specialised to the resolution). */
export function flowNetworkSpecOf(builtIn: VelocitySpec, network: Omit<NetworkSpec, 'height' | 'width'> | undefined, r: Resolution): FlowNetworkSpec {
  if (!network) return builtIn;
  const { time, condition } = network;
  if (!time || !condition) throw new Error(`model.network (${network.onnx}): the flow family needs model.network.time and model.network.condition (the inputs that receive t and the corrupted image)`);
  return { kind: 'imported', network: { ...network, time, condition, height: r.height, width: r.width }, predict: builtIn.predict, space: builtIn.space, inputGate: builtIn.inputGate };
}

/** Names and shapes of what trains (what checkpoints carry), in a fixed order. */
export function flowNetworkParams(spec: FlowNetworkSpec): { name: string; shape: number[] }[] {
  return isImported(spec) ? importedParamShapes(importedPolicy(spec.network)) : velocityParams(spec);
}

export function initFlowNetworkParams(spec: FlowNetworkSpec, seed: number): TensorMap {
  return isImported(spec) ? initImportedParams(importedPolicy(spec.network), seed) : initVelocityParams(spec, seed);
}

/** Graph inputs `param.<name>` for what trains; an imported network's frozen base as constants. */
export function declareFlowNetworkParams(g: Graph, spec: FlowNetworkSpec): Map<string, Value> {
  if (!isImported(spec)) return declareVelocityParams(g, spec);
  const params = new Map(flowNetworkParams(spec).map((p) => [p.name, g.input(`param.${p.name}`, p.shape)]));
  for (const [name, v] of frozenConstants(g, importedPolicy(spec.network))) params.set(name, v);
  return params;
}

/** Every tensor as a constant (a standalone sampler); an imported network's adapters merged into its base. */
export function bakeFlowNetworkParams(g: Graph, spec: FlowNetworkSpec, params: TensorMap): Map<string, Value> {
  if (!isImported(spec)) return bakeVelocityParams(g, spec, params);
  const ip = importedPolicy(spec.network);
  const merged = mergedImportedWeights(ip, params);
  return new Map(ip.net.params.map((p) => [p.name, g.constant(merged.get(p.name)!.data, p.shape, 'float32', `param.${p.name}`)]));
}

/**
 * v(x, t, y): x, y [N,3,H,W], t [N] -> [N,3,H,W]. With predict 'residual' the network's output f is a
 * correction of the corrupted image: x0_hat = y + f and v = (x - x0_hat) / t, the velocity that reaches
 * x0_hat at t = 0. A fresh network (zero head, f = 0) then samples y itself from any start: the generator
 * starts at identity instead of at noise. In the residual space (spec.space) the corrupted image is the state
 * 0, so x0_hat = f there. t > 0 in every step and SFT draw.
 */
export function flowVelocity(spec: FlowNetworkSpec, params: Map<string, Value>, x: Value, t: Value, y: Value): Value {
  // flow.inputGate: the body sees (1 - t) x; the step formulas below still use x itself.
  const out = networkOutput(spec, params, spec.inputGate ? mul(x, unsqueeze(sub(1, t), [1, 2, 3])) : x, t, y);
  if (spec.predict !== 'residual') return out;
  // In the residual space the corrupted image is the state 0: x0_hat = f.
  return div(sub(spec.space === 'residual' ? x : sub(x, y), out), unsqueeze(t, [1, 2, 3]));
}

function networkOutput(spec: FlowNetworkSpec, params: Map<string, Value>, x: Value, t: Value, y: Value): Value {
  if (!isImported(spec)) return velocity(spec, params, x, t, y);
  const ip = importedPolicy(spec.network);
  const { time, condition } = spec.network;
  const timeShape = ip.net.inputs.find((i) => i.name === time)!.shape;
  let tFeed: Value;
  if (timeShape.length === 1) tFeed = t;
  else if (timeShape.length === 2 && timeShape[1] === 1) tFeed = unsqueeze(t, [1]);
  else if (timeShape.length === 2 && typeof timeShape[1] === 'number' && timeShape[1] % 2 === 0) tFeed = timeFeatures(t, timeShape[1] / 2);
  else throw new Error(`${spec.network.onnx}: the time input '${time}' must be [N], [N,1] or [N,2F] (sinusoidal features), the graph declares [${timeShape}]`);
  return importedOutput(ip, params, { [ip.contract.image]: x, [time]: tFeed, [condition]: y });
}

export function checkFlowNetworkResolution(spec: FlowNetworkSpec, height: number, width: number): void {
  if (!isImported(spec)) return checkVelocityResolution(spec, height, width);
  if (spec.network.height !== height || spec.network.width !== width) throw new Error(`flow model: the imported network was specialised to ${spec.network.height}x${spec.network.width}, the graph asks for ${height}x${width}`);
}
