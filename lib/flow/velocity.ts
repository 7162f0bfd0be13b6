// The flow family's network: a velocity field v(x_t, t, y) conditioned on the corrupted image y (its
// channels concatenated with x_t) and on t through sinusoidal features, projected and added per block.
// The same resnet / U-Net shapes as the Gaussian policy (lib/models/policy.ts), with 6 input channels, no
// residual to the input and no batch statistics (the first on-policy ratio must be exactly 1).

import type { Graph, Value } from '../graph/graph.ts';
import { add, avgPool, concat, conv, leakyRelu, matmul, mul, reshape, unsqueeze, upsampleNearest } from '../graph/ops.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';
import type { ParamSpec } from '../models/policy.ts';
import { fillStandardNormal, hashSeed } from '../data/random.ts';

export interface VelocitySpec {
  arch: 'resnet' | 'unet';
  /** Channels of the first feature map (the U-Net doubles them per level). */
  width: number;
  /** Residual blocks (resnet) or down-sampling levels (unet). */
  depth: number;
  /** Sinusoidal frequencies of the time features (2x this many features: sin and cos). */
  timeFrequencies: number;
  /** Width of the shared time embedding. */
  timeWidth: number;
  /**
   * What the body's output means (flow.predict): 'velocity' (default) v itself; 'residual' a correction f of
   * the corrupted image, x0_hat = y + f, v = (x_t - x0_hat) / t (velocity-network.ts applies it).
   */
  predict?: 'velocity' | 'residual';
  /**
   * The state's space (flow.space): 'image' (default) 2 x - 1, where the corrupted image is y; 'residual'
   * the scaled residual of y, where the corrupted image is 0 (the skip of predict 'residual').
   */
  space?: 'image' | 'residual';
  /**
   * flow.inputGate: the body sees (1 - t) x_t instead of x_t, so at t = 1 it sees no noise at all and the
   * noise reaches it damped while the signal grows (a time-dependent input scale, as EDM's c_in).
   */
  inputGate?: boolean;
}

const LEAK = 0.1;
const act = (x: Value): Value => leakyRelu(x, LEAK);

function convParams(name: string, cout: number, cin: number, init: ParamSpec['init'] = 'he'): ParamSpec[] {
  return [
    { name: `${name}.weight`, shape: [cout, cin, 3, 3], init },
    { name: `${name}.bias`, shape: [cout], init: 'zeros' },
  ];
}

/** A dense layer [in, out] (time embedding and its per-block projections). */
function denseParams(name: string, cin: number, cout: number): ParamSpec[] {
  return [
    { name: `${name}.weight`, shape: [cin, cout], init: 'he' },
    { name: `${name}.bias`, shape: [cout], init: 'zeros' },
  ];
}

/** The blocks that receive a time projection, with their channel counts, in a fixed order. */
function timedBlocks(spec: VelocitySpec): Array<{ name: string; channels: number }> {
  const out: Array<{ name: string; channels: number }> = [];
  if (spec.arch === 'resnet') {
    for (let i = 0; i < spec.depth; i++) out.push({ name: `block${i}`, channels: spec.width });
  } else {
    out.push({ name: 'enc0', channels: spec.width });
    for (let l = 1; l <= spec.depth; l++) out.push({ name: `enc${l}`, channels: spec.width * 2 ** l });
    for (let l = spec.depth - 1; l >= 0; l--) out.push({ name: `dec${l}`, channels: spec.width * 2 ** l });
  }
  return out;
}

/** Every parameter of the velocity network, in a fixed order. All are trained. */
export function velocityParams(spec: VelocitySpec): ParamSpec[] {
  for (const [k, v] of Object.entries({ width: spec.width, depth: spec.depth, timeFrequencies: spec.timeFrequencies, timeWidth: spec.timeWidth })) {
    if (!Number.isInteger(v) || v < (k === 'depth' ? 0 : 1)) throw new Error(`flow model: ${k} must be a positive integer, got ${v}`);
  }
  const w = spec.width;
  const ps: ParamSpec[] = [...denseParams('time', 2 * spec.timeFrequencies, spec.timeWidth)];
  for (const b of timedBlocks(spec)) ps.push(...denseParams(`${b.name}.time`, spec.timeWidth, b.channels));
  if (spec.arch === 'resnet') {
    ps.push(...convParams('stem', w, 6));
    for (let i = 0; i < spec.depth; i++) ps.push(...convParams(`block${i}.conv1`, w, w), ...convParams(`block${i}.conv2`, w, w));
  } else {
    let c = w;
    ps.push(...convParams('enc0', w, 6));
    for (let l = 1; l <= spec.depth; l++) {
      ps.push(...convParams(`enc${l}`, 2 * c, c));
      c *= 2;
    }
    for (let l = spec.depth - 1; l >= 0; l--) {
      ps.push(...convParams(`dec${l}`, c / 2, c + c / 2));
      c /= 2;
    }
  }
  ps.push(...convParams('head', 3, w, 'zeros'));
  return ps;
}

/** Fresh parameters: He-normal weights (dense and conv), zero biases, zero head (v = 0 at the start). */
export function initVelocityParams(spec: VelocitySpec, seed: number): TensorMap {
  const out: TensorMap = new Map();
  for (const p of velocityParams(spec)) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (p.init === 'he') {
      const fanIn = p.shape.length === 2 ? p.shape[0] : p.shape.slice(1).reduce((a, b) => a * b, 1);
      fillStandardNormal(data, hashSeed(seed, 'flow', p.name));
      const scale = Math.sqrt(2 / ((1 + LEAK * LEAK) * fanIn));
      for (let i = 0; i < n; i++) data[i] *= scale;
    }
    out.set(p.name, { shape: p.shape, data });
  }
  return out;
}

export function declareVelocityParams(g: Graph, spec: VelocitySpec): Map<string, Value> {
  return new Map(velocityParams(spec).map((p) => [p.name, g.input(`param.${p.name}`, p.shape)]));
}

/** The parameters as constants (a standalone sampler); names and shapes are checked. */
export function bakeVelocityParams(g: Graph, spec: VelocitySpec, params: TensorMap): Map<string, Value> {
  return new Map(
    velocityParams(spec).map((p) => {
      const t = params.get(p.name);
      if (!t) throw new Error(`flow model: parameter ${p.name} is missing`);
      if (t.shape.join(',') !== p.shape.join(',')) throw new Error(`flow model: parameter ${p.name} has shape [${t.shape}], expected [${p.shape}]`);
      return [p.name, g.constant(t.data, p.shape, 'float32', `param.${p.name}`)];
    }),
  );
}

export function checkVelocityResolution(spec: VelocitySpec, height: number, width: number): void {
  if (spec.arch === 'unet') {
    const f = 2 ** spec.depth;
    if (height % f || width % f) throw new Error(`flow model: a U-Net of depth ${spec.depth} needs height and width divisible by ${f}, got ${height}x${width}`);
  }
}

/**
 * Elementwise sine / cosine. The builder has no Sin/Cos op; these are emitted directly and carry no
 * gradient rule, which is safe because they only ever see t (a graph input no parameter depends on):
 * autodiff asks for rules only on paths from the parameters to the loss.
 */
export function sin(x: Value): Value {
  return x.graph.emit('Sin', [x], {}, [{ dtype: x.dtype, shape: x.shape }])[0];
}
export function cos(x: Value): Value {
  return x.graph.emit('Cos', [x], {}, [{ dtype: x.dtype, shape: x.shape }])[0];
}

/** Frequencies of the time features: 1000 * 10000^(-k/F), k = 0..F-1 (t is in [0, 1]). */
export function timeFrequencies(count: number): Float32Array {
  return Float32Array.from({ length: count }, (_, k) => 1000 * Math.pow(10000, -k / count));
}

/** [N] -> [N, 2F]: sin and cos of t at each frequency. */
export function timeFeatures(t: Value, count: number): Value {
  const angles = mul(unsqueeze(t, [1]), t.graph.constant(timeFrequencies(count), [1, count]));
  return concat([sin(angles), cos(angles)], 1);
}

function conv3(x: Value, params: Map<string, Value>, name: string): Value {
  return conv(x, params.get(`${name}.weight`)!, params.get(`${name}.bias`)!, { pads: [1, 1, 1, 1] });
}

function dense(x: Value, params: Map<string, Value>, name: string): Value {
  return add(matmul(x, params.get(`${name}.weight`)!), params.get(`${name}.bias`)!);
}

/** Adds the block's projection of the time embedding [N, E] to a feature map [N, C, H, W] (per channel). */
function withTime(h: Value, emb: Value, params: Map<string, Value>, block: string): Value {
  const c = h.shape[1];
  return add(h, reshape(dense(emb, params, `${block}.time`), [h.shape[0], c, 1, 1]));
}

/** v(x, t, y): x and y [N,3,H,W] (flow space), t [N] -> [N,3,H,W]. */
export function velocity(spec: VelocitySpec, params: Map<string, Value>, x: Value, t: Value, y: Value): Value {
  const emb = act(dense(timeFeatures(t, spec.timeFrequencies), params, 'time'));
  const input = concat([x, y], 1);
  let h: Value;
  if (spec.arch === 'resnet') {
    h = act(conv3(input, params, 'stem'));
    for (let i = 0; i < spec.depth; i++) {
      const inner = act(withTime(conv3(h, params, `block${i}.conv1`), emb, params, `block${i}`));
      h = act(add(h, conv3(inner, params, `block${i}.conv2`)));
    }
  } else {
    const skips: Value[] = [];
    h = act(withTime(conv3(input, params, 'enc0'), emb, params, 'enc0'));
    for (let l = 1; l <= spec.depth; l++) {
      skips.push(h);
      h = act(withTime(conv3(avgPool(h, 2), params, `enc${l}`), emb, params, `enc${l}`));
    }
    for (let l = spec.depth - 1; l >= 0; l--) {
      h = act(withTime(conv3(concat([upsampleNearest(h, 2), skips[l]], 1), params, `dec${l}`), emb, params, `dec${l}`));
    }
  }
  return conv3(h, params, 'head');
}
