// The policy networks: mean = image + f(image), with f's last layer zero-initialised so that a fresh
// policy returns the corrupted image unchanged. One definition serves every graph that needs the mean.

import type { Graph, Value } from '../graph/graph.ts';
import { add, avgPool, concat, conv, leakyRelu, upsampleNearest } from '../graph/ops.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';
import { hashSeed, fillStandardNormal } from '../data/random.ts';
import {
  frozenConstants, importedMean, importedParamShapes, importedPolicy, initImportedParams, mergedImportedWeights,
  type AdapterSpec, type NetworkSpec,
} from './imported-policy.ts';

export interface PolicySpec {
  arch: 'resnet' | 'unet';
  /** Channels of the first feature map (the U-Net doubles them per level). */
  width: number;
  /** Residual blocks (resnet) or down-sampling levels (unet). */
  depth: number;
  /** Initial log of the action noise scale sigma. */
  logStd: number;
  /** Whether log_std is trained; when false it stays at its initial value. */
  learnLogStd: boolean;
  /** An imported mean network (model.network) replaces `arch`; `width`/`depth` are then unused. */
  network?: NetworkSpec | undefined;
  /** Low-rank adapters on the imported network (model.adapter). */
  adapter?: AdapterSpec | undefined;
}

export interface ParamSpec {
  name: string;
  shape: number[];
  init: 'he' | 'zeros' | 'logStd' | 'imported';
}

const LEAK = 0.1;
export const LOG_STD = 'log_std';

function convParams(name: string, cout: number, cin: number, k: number, init: 'he' | 'zeros' = 'he'): ParamSpec[] {
  return [
    { name: `${name}.weight`, shape: [cout, cin, k, k], init },
    { name: `${name}.bias`, shape: [cout], init: 'zeros' },
  ];
}

/**
 * Every parameter of the policy (what checkpoints carry), in a fixed order. For an imported network: its
 * trainable tensors and adapter factors; the frozen base is not a parameter (constants in every graph).
 */
export function policyParams(spec: PolicySpec): ParamSpec[] {
  const w = spec.width;
  const ps: ParamSpec[] = [];
  if (spec.network) {
    ps.push(...importedParamShapes(importedPolicy(spec.network, spec.adapter)).map((p) => ({ ...p, init: 'imported' as const })));
  } else if (spec.arch === 'resnet') {
    ps.push(...convParams('stem', w, 3, 3));
    for (let i = 0; i < spec.depth; i++) ps.push(...convParams(`block${i}.conv1`, w, w, 3), ...convParams(`block${i}.conv2`, w, w, 3));
    ps.push(...convParams('head', 3, w, 3, 'zeros'));
  } else {
    let c = w;
    ps.push(...convParams('enc0', w, 3, 3));
    for (let l = 1; l <= spec.depth; l++) {
      ps.push(...convParams(`enc${l}`, 2 * c, c, 3));
      c *= 2;
    }
    for (let l = spec.depth - 1; l >= 0; l--) {
      ps.push(...convParams(`dec${l}`, c / 2, c + c / 2, 3));
      c /= 2;
    }
    ps.push(...convParams('head', 3, w, 3, 'zeros'));
  }
  ps.push({ name: LOG_STD, shape: [], init: 'logStd' });
  return ps;
}

/** Names of the parameters the optimiser updates. */
export function trainableParams(spec: PolicySpec): ParamSpec[] {
  return policyParams(spec).filter((p) => p.name !== LOG_STD || spec.learnLogStd);
}

/** Fresh parameters: He-normal convolutions, zero biases, zero head, log_std from the spec. */
export function initPolicyParams(spec: PolicySpec, seed: number): TensorMap {
  const out: TensorMap = spec.network ? initImportedParams(importedPolicy(spec.network, spec.adapter), seed) : new Map();
  for (const p of policyParams(spec)) {
    if (p.init === 'imported') continue;
    const n = p.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (p.init === 'he') {
      const fanIn = p.shape.slice(1).reduce((a, b) => a * b, 1);
      fillStandardNormal(data, hashSeed(seed, p.name));
      const scale = Math.sqrt(2 / ((1 + LEAK * LEAK) * fanIn));
      for (let i = 0; i < n; i++) data[i] *= scale;
    } else if (p.init === 'logStd') data[0] = spec.logStd;
    out.set(p.name, { shape: p.shape, data });
  }
  return out;
}

function conv3(x: Value, params: Map<string, Value>, name: string): Value {
  return conv(x, params.get(`${name}.weight`)!, params.get(`${name}.bias`)!, { pads: [1, 1, 1, 1] });
}

const act = (x: Value): Value => leakyRelu(x, LEAK);

/** The policy mean for `image` [N,3,H,W] in [0,1]. */
export function policyMean(spec: PolicySpec, params: Map<string, Value>, image: Value): Value {
  if (spec.network) return importedMean(importedPolicy(spec.network, spec.adapter), params, image);
  let h: Value;
  if (spec.arch === 'resnet') {
    h = act(conv3(image, params, 'stem'));
    for (let i = 0; i < spec.depth; i++) {
      const r = conv3(act(conv3(h, params, `block${i}.conv1`)), params, `block${i}.conv2`);
      h = act(add(h, r));
    }
  } else {
    const skips: Value[] = [];
    h = act(conv3(image, params, 'enc0'));
    for (let l = 1; l <= spec.depth; l++) {
      skips.push(h);
      h = act(conv3(avgPool(h, 2), params, `enc${l}`));
    }
    for (let l = spec.depth - 1; l >= 0; l--) h = act(conv3(concat([upsampleNearest(h, 2), skips[l]], 1), params, `dec${l}`));
  }
  return add(image, conv3(h, params, 'head'));
}

/** Declares one graph input `param.<name>` per policy parameter. */
export function declareParams(g: Graph, spec: PolicySpec): Map<string, Value> {
  const params = new Map(policyParams(spec).map((p) => [p.name, g.input(`param.${p.name}`, p.shape)]));
  if (spec.network) for (const [name, v] of frozenConstants(g, importedPolicy(spec.network, spec.adapter))) params.set(name, v);
  return params;
}

/**
 * The parameters as constants (for a standalone model); names and shapes are checked. For an imported
 * network the whole base is baked with any adapters merged into it (W + alpha/rank B A), so the standalone
 * model is the plain network with the run's weights.
 */
export function bakeParams(g: Graph, spec: PolicySpec, params: TensorMap): Map<string, Value> {
  const baked = new Map(
    policyParams(spec).map((p) => {
      const t = params.get(p.name);
      if (!t) throw new Error(`model: parameter ${p.name} is missing`);
      if (t.shape.join(',') !== p.shape.join(',')) throw new Error(`model: parameter ${p.name} has shape [${t.shape}], expected [${p.shape}]`);
      return [p.name, g.constant(t.data, p.shape, 'float32', `param.${p.name}`)] as const;
    }),
  );
  if (!spec.network) return baked;
  const ip = importedPolicy(spec.network, spec.adapter);
  const merged = mergedImportedWeights(ip, params);
  const out = new Map<string, Value>([[LOG_STD, baked.get(LOG_STD)!]]);
  for (const p of ip.net.params) out.set(p.name, g.constant(merged.get(p.name)!.data, p.shape, 'float32', `param.${p.name}`));
  return out;
}


export function checkResolution(spec: PolicySpec, height: number, width: number): void {
  if (spec.network) {
    if (spec.network.height !== height || spec.network.width !== width) throw new Error(`model: the imported network was specialised to ${spec.network.height}x${spec.network.width}, the graph asks for ${height}x${width}`);
    return;
  }
  if (spec.arch === 'unet') {
    const f = 2 ** spec.depth;
    if (height % f || width % f) throw new Error(`model: a U-Net of depth ${spec.depth} needs height and width divisible by ${f}, got ${height}x${width}`);
  }
}

/** The frozen base's digest of an imported network (checkpoints name it); undefined for the built-in networks. */
export function baseDigestOf(spec: PolicySpec): string | undefined {
  return spec.network ? importedPolicy(spec.network, spec.adapter).baseDigest : undefined;
}

