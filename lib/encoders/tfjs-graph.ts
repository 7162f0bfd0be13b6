// A converter from the TensorFlow.js graph-model format (model.json's `modelTopology` of TensorFlow
// NodeDefs plus binary weight shards, possibly uint8/uint16-quantised) to the project's graph builder.
// TensorFlow.js models are NHWC; the project's graphs are NCHW, so every 4-D tensor is carried in NCHW
// and each op is translated accordingly (weights are re-laid out once, at conversion time). Only the ops
// that convolutional image classifiers use are supported; anything else is an error naming the node.
// Built from ordinary graph ops, the converted network is differentiable like the rest of the graph.

import type { Value } from '../graph/graph.ts';
import { add, clip, conv, div, exp, matmul, mul, reduceMean, reduceSum, relu, squeeze, sub, transpose } from '../graph/ops.ts';

/** One TensorFlow NodeDef as model.json spells it (attribute values in their JSON form). */
export interface TfNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, TfAttr>;
}
interface TfAttr {
  s?: string;
  i?: string;
  f?: number;
  b?: boolean;
  list?: { i?: string[]; s?: string[] };
}

export interface TfWeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { min?: number; scale?: number; dtype: string };
}

/** The parts of model.json the converter reads. */
export interface TfjsModelJson {
  format?: string;
  modelTopology: { node: TfNode[] };
  weightsManifest: Array<{ paths: string[]; weights: TfWeightSpec[] }>;
}

export interface TfTensor {
  shape: number[];
  data: Float32Array;
}

export interface TfjsGraphModel {
  nodes: TfNode[];
  weights: Map<string, TfTensor>;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null;
}

/** Checks the shape of a parsed model.json enough to give a clear error instead of a crash later. */
export function asModelJson(x: unknown, what: string): TfjsModelJson {
  if (!isObject(x)) throw new Error(`${what}: model.json is not an object`);
  const topo = x.modelTopology;
  if (!isObject(topo) || !Array.isArray(topo.node)) {
    throw new Error(`${what}: not a TensorFlow.js graph model (modelTopology.node missing; a Keras layers model is not supported)`);
  }
  if (!Array.isArray(x.weightsManifest)) throw new Error(`${what}: weightsManifest missing`);
  return x as unknown as TfjsModelJson;
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Decodes the weights: the shards of every manifest group, concatenated, hold the weights in manifest
 * order; quantised weights are dequantised as TensorFlow.js does (q * scale + min).
 */
export function readTfjsGraphModel(json: TfjsModelJson, shardsByPath: Map<string, Uint8Array>, what: string): TfjsGraphModel {
  const weights = new Map<string, TfTensor>();
  for (const group of json.weightsManifest) {
    const parts = group.paths.map((p) => {
      const b = shardsByPath.get(p);
      if (!b) throw new Error(`${what}: weight shard ${p} is missing`);
      return b;
    });
    const buf = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) {
      buf.set(p, o);
      o += p.length;
    }
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let offset = 0;
    for (const w of group.weights) {
      if (w.dtype !== 'float32') throw new Error(`${what}: weight ${w.name} has dtype ${w.dtype}; only float32 weights are supported`);
      const n = numel(w.shape);
      const data = new Float32Array(n);
      const q = w.quantization;
      const bytes = q ? ({ uint8: 1, uint16: 2 } as Record<string, number>)[q.dtype] : 4;
      if (!bytes) throw new Error(`${what}: weight ${w.name} is quantised as ${q!.dtype}; only uint8 and uint16 are supported`);
      if (offset + n * bytes > buf.length) throw new Error(`${what}: the shards end inside weight ${w.name}`);
      if (!q) for (let i = 0; i < n; i++) data[i] = view.getFloat32(offset + 4 * i, true);
      else {
        if (q.scale === undefined || q.min === undefined) throw new Error(`${what}: weight ${w.name} lacks quantisation scale/min`);
        for (let i = 0; i < n; i++) data[i] = (bytes === 1 ? buf[offset + i] : view.getUint16(offset + 2 * i, true)) * q.scale + q.min;
      }
      offset += n * bytes;
      weights.set(w.name, { shape: w.shape, data });
    }
    if (offset !== buf.length) throw new Error(`${what}: ${buf.length - offset} bytes of the shards of ${group.paths.join(', ')} are not described by the manifest`);
  }
  return { nodes: json.modelTopology.node, weights };
}

// ---------------------------------------------------------------------------------------------------
// Conversion

/** A converted tensor: a graph value, or a constant kept on the JS side until an op consumes it. */
type Tensor = { kind: 'value'; v: Value; nhwc: boolean } | { kind: 'const'; t: TfTensor };

function attrInts(n: TfNode, key: string): number[] | undefined {
  return n.attr?.[key]?.list?.i?.map(Number);
}
function attrString(n: TfNode, key: string): string | undefined {
  const s = n.attr?.[key]?.s;
  return s === undefined ? undefined : Buffer.from(s, 'base64').toString('utf8');
}
function attrStrings(n: TfNode, key: string): string[] {
  return (n.attr?.[key]?.list?.s ?? []).map((s) => Buffer.from(s, 'base64').toString('utf8'));
}

/** The output name a NodeDef input refers to: 'node', 'node:0' (control inputs '^x' are skipped). */
function inputName(ref: string, node: TfNode): string {
  const [name, port] = ref.split(':');
  if (port !== undefined && port !== '0') throw new Error(`tfjs node ${node.name} (${node.op}): uses output ${port} of ${name}; only single-output producers are supported`);
  return name;
}

/** SAME/VALID padding as ONNX [top, left, bottom, right], as TensorFlow computes it. */
function tfPads(padding: string, inH: number, inW: number, k: [number, number], s: [number, number], d: [number, number], node: TfNode): [number, number, number, number] {
  if (padding === 'VALID') return [0, 0, 0, 0];
  if (padding !== 'SAME') throw new Error(`tfjs node ${node.name} (${node.op}): padding ${padding} is not supported (SAME, VALID)`);
  const one = (size: number, kk: number, ss: number, dd: number) => {
    const out = Math.ceil(size / ss);
    const total = Math.max((out - 1) * ss + (kk - 1) * dd + 1 - size, 0);
    return [Math.floor(total / 2), total - Math.floor(total / 2)];
  };
  const [t, b] = one(inH, k[0], s[0], d[0]);
  const [l, r] = one(inW, k[1], s[1], d[1]);
  return [t, l, b, r];
}

/** NHWC axis -> the axis of the same dimension in NCHW. */
const NHWC_TO_NCHW = [0, 2, 3, 1];

/**
 * Converts the nodes that `outputs` depend on, with `input` ([N,3,H,W], NCHW) standing for the graph's
 * single Placeholder. Returns the converted value of each requested node (4-D ones in NCHW).
 */
export function convertTfjsGraph(model: TfjsGraphModel, input: Value, outputs: string[], what: string): Map<string, Value> {
  const g = input.graph;
  const byName = new Map(model.nodes.map((n) => [n.name, n]));
  const done = new Map<string, Tensor>();

  const fail = (n: TfNode, msg: string): never => {
    throw new Error(`${what}: tfjs node ${n.name} (${n.op}): ${msg}`);
  };
  const asValue = (t: Tensor, like?: Tensor): Value => {
    if (t.kind === 'value') return t.v;
    // A constant operand of an elementwise op with an NCHW tensor: a per-channel vector moves to axis 1.
    if (like?.kind === 'value' && like.nhwc && t.t.shape.length === 1 && t.t.shape[0] !== 1) return g.constant(t.t.data, [1, t.t.shape[0], 1, 1]);
    if (like?.kind === 'value' && like.nhwc && t.t.shape.length > 1 && numel(t.t.shape) !== 1) throw new Error(`${what}: constant of shape [${t.t.shape}] broadcast against an image tensor is not supported`);
    return numel(t.t.shape) === 1 ? g.constant(t.t.data, []) : g.constant(t.t.data, t.t.shape);
  };
  const image = (t: Tensor, n: TfNode): Value => {
    if (t.kind !== 'value' || !t.nhwc) fail(n, 'expects a 4-D image tensor input');
    return (t as { v: Value }).v;
  };
  const constant = (t: Tensor, n: TfNode): TfTensor => {
    if (t.kind !== 'const') fail(n, 'expects a constant (weight) input');
    return (t as { t: TfTensor }).t;
  };

  const fusedActivation = (n: TfNode, y: Value, ops: string[]): Value => {
    const act = ops.filter((o) => o !== 'BiasAdd');
    if (act.length === 0) return y;
    if (act.length > 1) fail(n, `fused ops [${ops}] not supported`);
    if (act[0] === 'Relu') return relu(y);
    if (act[0] === 'Relu6') return clip(y, 0, 6);
    return fail(n, `fused activation ${act[0]} is not supported (Relu, Relu6)`);
  };

  const convNode = (n: TfNode, args: Tensor[], depthwise: boolean): Value => {
    const x = image(args[0], n);
    const w = constant(args[1], n);
    if ((attrString(n, 'data_format') ?? 'NHWC') !== 'NHWC') fail(n, 'only NHWC data_format is supported');
    const [kh, kw, cin, m] = w.shape;
    const strides = attrInts(n, 'strides') ?? [1, 1, 1, 1];
    const dil = attrInts(n, 'dilations') ?? [1, 1, 1, 1];
    const s: [number, number] = [strides[1], strides[2]];
    const d: [number, number] = [dil[1], dil[2]];
    const pads = tfPads(attrString(n, 'padding') ?? 'VALID', x.shape[2] as number, x.shape[3] as number, [kh, kw], s, d, n);
    // HWIO -> OIHW; depthwise HWCM -> [C*M, 1, H, W] with C groups (output channel c*M + j).
    const cout = depthwise ? cin * m : m;
    const oihw = new Float32Array(w.data.length);
    const perOut = depthwise ? 1 : cin;
    for (let y = 0; y < kh; y++) {
      for (let xx = 0; xx < kw; xx++) {
        for (let i = 0; i < cin; i++) {
          for (let o = 0; o < m; o++) {
            const src = ((y * kw + xx) * cin + i) * m + o;
            const oc = depthwise ? i * m + o : o;
            const ic = depthwise ? 0 : i;
            oihw[((oc * perOut + ic) * kh + y) * kw + xx] = w.data[src];
          }
        }
      }
    }
    const ops = attrStrings(n, 'fused_ops');
    let bias: Value | undefined;
    if (ops.includes('BiasAdd')) {
      const b = constant(args[2], n);
      if (b.data.length !== cout) fail(n, `bias has ${b.data.length} values for ${cout} channels`);
      bias = g.constant(b.data, [cout]);
    } else if (ops.length > 0) fail(n, `fused ops [${ops}] without BiasAdd are not supported`);
    const y = conv(x, g.constant(oihw, [cout, perOut, kh, kw]), bias, { strides: s, pads, dilations: d, group: depthwise ? cin : 1 });
    return fusedActivation(n, y, ops);
  };

  const matmulNode = (n: TfNode, args: Tensor[]): Value => {
    let a = asValue(args[0]);
    let b = asValue(args[1]);
    if (n.attr?.transpose_a?.b) a = transpose(a, [1, 0]);
    if (n.attr?.transpose_b?.b) b = transpose(b, [1, 0]);
    let y = matmul(a, b);
    const ops = attrStrings(n, 'fused_ops');
    if (ops.includes('BiasAdd')) y = add(y, asValue(args[2]));
    else if (ops.length > 0) fail(n, `fused ops [${ops}] without BiasAdd are not supported`);
    return fusedActivation(n, y, ops);
  };

  const visit = (name: string): Tensor => {
    const hit = done.get(name);
    if (hit) return hit;
    const n = byName.get(name);
    if (!n) throw new Error(`${what}: no node named ${name}`);
    const args = (n.input ?? []).filter((r) => !r.startsWith('^')).map((r) => visit(inputName(r, n)));
    const v = (x: Value): Tensor => ({ kind: 'value', v: x, nhwc: x.rank === 4 });
    let out: Tensor;
    switch (n.op) {
      case 'Placeholder':
        out = { kind: 'value', v: input, nhwc: true };
        break;
      case 'Const': {
        const t = model.weights.get(n.name);
        if (!t) fail(n, 'has no weight in the manifest');
        out = { kind: 'const', t: t! };
        break;
      }
      case 'Identity':
        out = args[0];
        break;
      case 'Mul':
      case 'Sub':
      case 'Add':
      case 'AddV2':
      case 'RealDiv': {
        const f = { Mul: mul, Sub: sub, Add: add, AddV2: add, RealDiv: div }[n.op]!;
        out = v(f(asValue(args[0], args[1]), asValue(args[1], args[0])));
        break;
      }
      case 'BiasAdd':
        out = v(add(asValue(args[0]), asValue(args[1], args[0])));
        break;
      case 'Relu':
        out = v(relu(asValue(args[0])));
        break;
      case 'Relu6':
        out = v(clip(asValue(args[0]), 0, 6));
        break;
      case 'Conv2D':
      case '_FusedConv2D':
        out = v(convNode(n, args, false));
        break;
      case 'DepthwiseConv2dNative':
      case 'FusedDepthwiseConv2dNative':
        out = v(convNode(n, args, true));
        break;
      case 'AvgPool': {
        const x = image(args[0], n);
        const k = attrInts(n, 'ksize') ?? [];
        // Global average pooling (the classifiers' only use of it): the window covers the whole map.
        if (attrString(n, 'padding') !== 'VALID' || k[1] !== x.shape[2] || k[2] !== x.shape[3]) fail(n, `only global VALID pooling is supported (ksize [${k}] on [${x.shape}])`);
        out = v(reduceMean(x, [2, 3], true));
        break;
      }
      case 'Mean': {
        const x = image(args[0], n);
        const axes = Array.from(constant(args[1], n).data, (a) => NHWC_TO_NCHW[a < 0 ? a + 4 : a]);
        const keep = !!n.attr?.keep_dims?.b;
        if (!keep && !(axes.length === 2 && axes.includes(2) && axes.includes(3))) fail(n, 'only the spatial mean or keep_dims means are supported');
        out = v(reduceMean(x, axes, keep));
        break;
      }
      case 'Squeeze': {
        const t = args[0];
        if (t.kind !== 'value') return fail(n, 'squeezes a constant');
        const dims = attrInts(n, 'squeeze_dims') ?? attrInts(n, 'axis') ?? [];
        const axes = t.nhwc ? dims.map((a) => NHWC_TO_NCHW[a < 0 ? a + 4 : a]) : dims;
        // NHWC minus H and W keeps the order [N, C]: the same as NCHW minus H and W.
        if (t.nhwc && !(axes.includes(2) && axes.includes(3))) fail(n, 'only squeezing the spatial axes of an image is supported');
        out = { kind: 'value', v: squeeze(t.v, axes), nhwc: false };
        break;
      }
      case 'MatMul':
      case '_FusedMatMul':
        out = v(matmulNode(n, args));
        break;
      case 'Softmax': {
        const x = asValue(args[0]);
        const e = exp(x);
        out = v(div(e, reduceSum(e, [x.rank - 1], true)));
        break;
      }
      default:
        return fail(n, 'op not supported by the converter');
    }
    done.set(name, out);
    return out;
  };

  const result = new Map<string, Value>();
  for (const name of outputs) {
    const t = visit(name);
    if (t.kind !== 'value') throw new Error(`${what}: output ${name} is a constant`);
    result.set(name, t.v);
  }
  return result;
}

/** The node feeding the last MatMul (the classifier head): the pooled penultimate features. */
export function penultimateNode(model: TfjsGraphModel, what: string): string {
  const heads = model.nodes.filter((n) => n.op === 'MatMul' || n.op === '_FusedMatMul');
  if (heads.length === 0) throw new Error(`${what}: no MatMul classifier head, so no penultimate features`);
  return inputName(heads[heads.length - 1].input![0], heads[heads.length - 1]);
}

/** The names of the nodes that compute (not Const/Placeholder), in model order: each is checked in tests. */
export function computeNodes(model: TfjsGraphModel): string[] {
  return model.nodes.filter((n) => n.op !== 'Const' && n.op !== 'Placeholder').map((n) => n.name);
}

