// Imports an ONNX graph written by torch.onnx.export into the graph builder. Loading decodes the model,
// checks every op against the translation table (refusing an unsupported one by name, node and the list
// of supported ops), turns float initializers into named parameters, and builds the network once into a
// scratch graph to learn its output shapes. `build` then replays it into any graph (a policy's forward,
// a training graph with its loss and gradients), so the imported network is just more graph.

import onnxProto from 'onnx-proto';
import { Graph, type Shape, type Value } from '../graph/graph.ts';
import { decodeModel, decodeTensor, graphInputs } from '../graph/onnx.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';
import { evalHost, hostValue, type HostValue } from './host-values.ts';
import { HOST_ONLY, SUPPORTED_OPS, translators, type NodeContext, type Translated } from './onnx-ops.ts';

const { onnx } = onnxProto;
type NodeProto = onnxProto.onnx.INodeProto;
type AttributeProto = onnxProto.onnx.IAttributeProto;
type TensorProto = onnxProto.onnx.ITensorProto;

/** What a parameter does in the network, from the first op that reads it (LoRA and freezing use it). */
export type ParamRole =
  | 'conv-weight' | 'conv-transpose-weight' | 'matmul-weight' | 'gemm-weight' | 'bias'
  | 'norm-scale' | 'norm-bias' | 'running-stat' | 'activation-slope' | 'other';

export interface ImportedParam {
  name: string;
  shape: number[];
  role: ParamRole;
  /** The op type and node name that first reads it. */
  usedBy: string;
}

export interface ImportedIO {
  name: string;
  shape: Shape;
}

export interface ImportOptions {
  /** Name for messages (the file path). */
  source?: string;
  /** Shapes for graph inputs: fixes dynamic dimensions (a height and width chosen for the run). */
  inputShapes?: Record<string, Shape>;
  /** Makes the first dimension of every graph input the run-time symbol 'N' (as the policies need). */
  symbolicBatch?: boolean;
}

export interface ImportedNetwork {
  source: string;
  opset: number;
  producer: string;
  inputs: ImportedIO[];
  outputs: ImportedIO[];
  /** The float initializers the network reads as tensors, in graph order. */
  params: ImportedParam[];
  /** Their values from the file's initializers. */
  weights: TensorMap;
  /** Op type -> number of nodes. */
  opCounts: Record<string, number>;
  /** Emits the network into `g`; `param` supplies each parameter (a graph input, or a frozen constant). */
  build(g: Graph, inputs: Record<string, Value>, param: (p: ImportedParam) => Value): Value[];
}

/**
 * A one-element float initializer that torch.onnx.export named itself ('onnx::Pow_12', '/Constant_output_0')
 * is a traced constant (an exponent, an epsilon), not a parameter: nn.Parameters keep state-dict names.
 */
function tracedConstant(name: string, data: Float32Array): boolean {
  return data.length <= 1 && (name.startsWith('onnx::') || name.startsWith('/'));
}

/** Decodes an attribute to a plain value (tensors become host values). */
function attributeValue(a: AttributeProto, what: string): unknown {
  const A = onnx.AttributeProto.AttributeType;
  const num = (x: unknown): number => Number(String(x));
  switch (a.type) {
    case A.FLOAT: return a.f ?? 0;
    case A.INT: return num(a.i ?? 0);
    case A.STRING: return new TextDecoder().decode(a.s ?? new Uint8Array());
    case A.FLOATS: return [...(a.floats ?? [])];
    case A.INTS: return (a.ints ?? []).map(num);
    case A.TENSOR: return hostFromTensor(a.t!, what);
    default: return undefined;
  }
}

function hostFromTensor(t: TensorProto, what: string): HostValue {
  const c = decodeTensor(t, what);
  const data = c.dtype === 'int64' ? Array.from(c.data as BigInt64Array, Number) : Array.from(c.data as Float32Array);
  return hostValue(c.dtype === 'int64' ? 'int' : 'float', c.dims, data);
}

/** Conv weights are [out, in, kh, kw], gemm weights [out, in] (transB), matmul weights [in, out]. */
function roleOf(op: string, index: number, transB: boolean): ParamRole {
  if (op === 'Conv') return index === 1 ? 'conv-weight' : 'bias';
  if (op === 'ConvTranspose') return index === 1 ? 'conv-transpose-weight' : 'bias';
  if (op === 'Gemm') return index === 1 ? (transB ? 'gemm-weight' : 'matmul-weight') : index === 2 ? 'bias' : 'other';
  if (op === 'MatMul') return index === 1 ? 'matmul-weight' : 'other';
  if (op === 'BatchNormalization') return index >= 3 ? 'running-stat' : index === 1 ? 'norm-scale' : 'norm-bias';
  if (op === 'InstanceNormalization' || op === 'LayerNormalization') return index === 1 ? 'norm-scale' : 'norm-bias';
  if (op === 'PRelu') return index === 1 ? 'activation-slope' : 'other';
  return 'other';
}

function shapeOfValueInfo(v: onnxProto.onnx.IValueInfoProto): Shape {
  return (v.type?.tensorType?.shape?.dim ?? []).map((d, i) => (d.dimValue != null && String(d.dimValue) !== '0' ? Number(String(d.dimValue)) : d.dimParam || `d${i}`));
}

export const MIN_OPSET = 6;
export const MAX_OPSET = 20;

/** Loads an ONNX model (bytes of a file) and checks that every node can be built and differentiated. */
export function importOnnx(bytes: Uint8Array, opts: ImportOptions = {}): ImportedNetwork {
  const source = opts.source ?? 'ONNX model';
  if (bytes.length === 0) throw new Error(`${source}: the file is empty`);
  const model = decodeModel(bytes, source);
  const graph = model.graph;
  if (!graph || !(graph.node ?? []).length) throw new Error(`${source}: not an ONNX model with a graph (truncated or not ONNX?)`);
  const opsetEntry = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  const opset = Number(String(opsetEntry?.version ?? 1));
  // The opsets whose forms the translators normalise (docs/import.md); another may define an op differently.
  if (opset < MIN_OPSET || opset > MAX_OPSET) throw new Error(`${source}: uses opset ${opset}; opsets ${MIN_OPSET}-${MAX_OPSET} are supported (torch.onnx.export(..., opset_version=17) writes one)`);
  const nodes = graph.node ?? [];

  // Refuse what cannot be built before building anything.
  const opCounts: Record<string, number> = {};
  for (const n of nodes) {
    const key = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType!;
    opCounts[key] = (opCounts[key] ?? 0) + 1;
    if ((n.domain && n.domain !== 'ai.onnx') || !(n.opType! in translators || HOST_ONLY.has(n.opType!))) {
      throw new Error(`${source}: node '${n.name || n.output?.[0]}' uses op ${key}, which has no forward builder or gradient rule here; supported ops: ${SUPPORTED_OPS.join(', ')}`);
    }
  }

  const initializers = new Map<string, TensorProto>();
  for (const t of graph.initializer ?? []) initializers.set(t.name!, t);
  const inputs: ImportedIO[] = graphInputs(graph)
    .map((i) => {
      // The graph is built in float32 and fed float32: an integer or half input would compute something else.
      // A double input is computed in float32 (the conformance data's float64 models), but not as a policy,
      // whose file onnxruntime must run on the float32 images the policy feeds (the forward check).
      const T = onnx.TensorProto.DataType;
      const elemType = i.type?.tensorType?.elemType ?? 0;
      if (elemType !== 0 && elemType !== T.FLOAT && (elemType !== T.DOUBLE || opts.symbolicBatch)) {
        throw new Error(`${source}: input '${i.name}' is ${onnx.TensorProto.DataType[elemType] ?? `ONNX type ${elemType}`}; only float32 inputs are supported (export with float32 example inputs)`);
      }
      const declared = shapeOfValueInfo(i);
      // torch.onnx.export without dynamic_axes fixes the batch (to the example's) and folds sizes computed
      // from it into constants; nothing here or in onnxruntime can run such a file at another batch.
      if (opts.symbolicBatch && typeof declared[0] === 'number') {
        throw new Error(`${source}: input '${i.name}' declares a fixed batch of ${declared[0]} (shape [${declared}]): the file was exported without dynamic axes, so sizes computed from the batch may be baked in and onnxruntime accepts no other batch; re-export with torch.onnx.export(..., dynamic_axes={'${i.name}': {0: 'batch'}})`);
      }
      let shape = opts.inputShapes?.[i.name!] ?? declared;
      if (opts.symbolicBatch) shape = ['N', ...shape.slice(1)];
      const loose = shape.slice(opts.symbolicBatch ? 1 : 0).find((d) => typeof d === 'string');
      if (loose !== undefined) throw new Error(`${source}: input '${i.name}' has the dynamic dimension '${loose}' (shape [${shape}]); give its size (for example the run's image height and width)`);
      return { name: i.name!, shape };
    });
  for (const name of Object.keys(opts.inputShapes ?? {})) {
    if (!inputs.some((i) => i.name === name)) throw new Error(`${source}: has no graph input '${name}' (inputs: ${inputs.map((i) => i.name).join(', ')})`);
  }

  // Float initializers, decoded once; which are parameters is learnt by building.
  const floats = new Map<string, { shape: number[]; data: Float32Array }>();
  const hostInits = new Map<string, HostValue>();
  for (const [name, t] of initializers) {
    const c = decodeTensor(t, source);
    if (c.dtype === 'float32') floats.set(name, { shape: c.dims, data: c.data as Float32Array });
    else hostInits.set(name, hostFromTensor(t, source));
  }

  const params: ImportedParam[] = [];
  const build = (g: Graph, feeds: Record<string, Value>, param: (p: ImportedParam) => Value, discover = false): Value[] => {
    const env = new Map<string, Value | HostValue>();
    const paramValues = new Map<string, Value>();
    for (const io of inputs) {
      const v = feeds[io.name];
      if (!v) throw new Error(`${source}: build needs a value for input '${io.name}'`);
      env.set(io.name, v);
    }
    for (const [name, h] of hostInits) env.set(name, h);
    // Each run-time dimension ('N') is read, where a node needs it at run time, from the first input holding it.
    const dimSources = new Map<string, { value: Value; axis: number }>();
    for (const io of inputs) {
      const v = feeds[io.name];
      v.shape.forEach((d, axis) => {
        if (typeof d === 'string' && !dimSources.has(d)) dimSources.set(d, { value: v, axis });
      });
    }
    const lookup = (name: string, what: string): Value | HostValue | undefined => {
      const v = env.get(name);
      if (v || !floats.has(name)) {
        if (!v) throw new Error(`${source}: ${what} reads '${name}', which nothing produces (is the graph sorted?)`);
        return v;
      }
      return undefined;
    };
    for (const n of nodes) {
      const what = `${source}: node '${n.name || n.output?.[0]}' (${n.opType})`;
      const names = n.input ?? [];
      const attrs = new Map((n.attribute ?? []).map((a) => [a.name!, a] as const));
      const attr = (name: string): unknown => {
        const a = attrs.get(name);
        return a ? attributeValue(a, what) : undefined;
      };
      const has = (i: number): boolean => i < names.length && names[i] !== '';
      const isHost = (i: number): boolean => {
        const v = has(i) ? env.get(names[i]) : undefined;
        return !!v && 'kind' in v;
      };
      const isInitializer = (i: number): boolean => has(i) && floats.has(names[i]) && !env.has(names[i]);
      const host = (i: number): HostValue => {
        if (!has(i)) throw new Error(`${what}: input ${i} is missing`);
        const v = lookup(names[i], what);
        if (v === undefined) {
          const f = floats.get(names[i])!;
          return hostValue('float', f.shape, Array.from(f.data));
        }
        if (!('kind' in v)) throw new Error(`${what}: input '${names[i]}' must be static (computed from constants and shapes), but it is computed at run time`);
        return v;
      };
      const tensor = (i: number): Value => {
        if (!has(i)) throw new Error(`${what}: input ${i} is missing`);
        const name = names[i];
        const v = lookup(name, what);
        if (v === undefined) {
          if (tracedConstant(name, floats.get(name)!.data)) {
            const f = floats.get(name)!;
            return f.shape.length === 0 ? g.scalar(f.data[0]) : g.constant(f.data, f.shape);
          }
          let p = paramValues.get(name);
          if (!p) {
            let info = params.find((q) => q.name === name);
            if (!info) {
              if (!discover) throw new Error(`${what}: '${name}' was not a parameter when the model was loaded`);
              info = { name, shape: floats.get(name)!.shape, role: roleOf(n.opType!, i, attr('transB') === 1), usedBy: `${n.opType} '${n.name || n.output?.[0]}'` };
              params.push(info);
            }
            p = param(info);
            paramValues.set(name, p);
          }
          return p;
        }
        if ('kind' in v) return materialise(g, v, what);
        return v;
      };
      const ctx: NodeContext = {
        g, opType: n.opType!, opset, what, inputCount: names.length, outputCount: (n.output ?? []).filter((o) => o !== '').length,
        has, isHost, isInitializer, tensor, host, attr, runtimeDim: (d) => dimSources.get(d),
      };
      let outs: Translated[];
      try {
        outs = translateNode(ctx, n, names, env, floats);
      } catch (e) {
        // Every error names the file and the node (a builder's own message names neither).
        const message = (e as Error).message;
        throw message.startsWith(what) ? e : new Error(`${what}: ${message}`, { cause: e });
      }
      (n.output ?? []).forEach((name, i) => {
        if (name !== '' && outs[i] !== undefined) env.set(name, outs[i]);
      });
    }
    return (graph.output ?? []).map((o) => {
      const v = env.get(o.name!);
      if (!v) throw new Error(`${source}: graph output '${o.name}' is produced by nothing`);
      return 'kind' in v ? materialise(g, v, `${source}: output '${o.name}'`) : v;
    });
  };

  // Build once to learn the parameters and output shapes (and to surface any error at load).
  const scratch = new Graph();
  const scratchInputs = Object.fromEntries(inputs.map((io) => [io.name, scratch.input(io.name, io.shape)]));
  const outs = build(scratch, scratchInputs, (p) => scratch.input(p.name, p.shape), true);
  const outputs = (graph.output ?? []).map((o, i) => ({ name: o.name!, shape: outs[i].shape }));
  const weights: TensorMap = new Map(params.map((p) => [p.name, { shape: p.shape, data: floats.get(p.name)!.data }]));

  return {
    source,
    opset,
    producer: `${model.producerName ?? ''} ${model.producerVersion ?? ''}`.trim(),
    inputs,
    outputs,
    params,
    weights,
    opCounts,
    build: (g, feeds, param) => build(g, feeds, param),
  };
}

function translateNode(c: NodeContext, n: NodeProto, names: string[], env: Map<string, Value | HostValue>, floats: Map<string, unknown>): Translated[] {
  const op = n.opType!;
  if (op === 'Shape') {
    const v = env.get(names[0]) ?? (floats.has(names[0]) ? c.tensor(0) : undefined);
    const shape: Shape = v && 'kind' in v ? v.dims : (v as Value).shape;
    const start = (c.attr('start') as number | undefined) ?? 0;
    const end = (c.attr('end') as number | undefined) ?? shape.length;
    const norm = (i: number) => Math.max(0, Math.min(shape.length, i < 0 ? i + shape.length : i));
    const dims = shape.slice(norm(start), norm(end));
    return [hostValue('int', [dims.length], dims)];
  }
  // Static whenever every input is: folded on the host (shape arithmetic, constants).
  const present = names.map((_, i) => c.has(i));
  const staticInputs = present.every((p, i) => !p || c.isHost(i));
  // Where folding cannot (a float constant gathered along axis 1), an op with a tensor builder is built on
  // constants instead; if that fails too, the folding's reason is the one given. Integer values are shapes
  // and indices, which later nodes need static: for them the folding's reason stands at once.
  let unfolded: unknown;
  if (op !== 'Constant' && staticInputs) {
    try {
      const folded = evalHost({ op, inputs: names.map((_, i) => (c.has(i) ? c.host(i) : null)), attr: c.attr, opset: c.opset });
      if (folded) return [folded];
    } catch (e) {
      const data = c.has(0) ? c.host(0).dtype : 'int';
      if (HOST_ONLY.has(op) || (data !== 'float' && data !== 'double')) throw e;
      unfolded = e;
    }
  }
  if (HOST_ONLY.has(op)) throw new Error(`${c.what}: only supported on static values (shapes and constants), but an input is computed at run time`);
  try {
    return translators[op](c);
  } catch (e) {
    throw unfolded ?? e;
  }
}

/** The model with the named initializers replaced (merged adapters, a state dict's weights). */
export function withInitializers(bytes: Uint8Array, weights: TensorMap): Uint8Array {
  const m = decodeModel(bytes);
  for (const t of m.graph?.initializer ?? []) {
    const w = weights.get(t.name!);
    if (!w) continue;
    t.dataType = onnx.TensorProto.DataType.FLOAT;
    t.rawData = new Uint8Array(w.data.buffer.slice(w.data.byteOffset, w.data.byteOffset + w.data.byteLength));
    t.floatData = [];
  }
  return onnx.ModelProto.encode(m).finish();
}

/** A host value used as a tensor operand becomes a constant (a scalar is shared). */
function materialise(g: Graph, v: HostValue, what: string): Value {
  const data = v.data.map((x) => {
    if (typeof x !== 'number') throw new Error(`${what}: a value depends on the run-time dimension '${x}' and cannot be a constant`);
    return x;
  });
  const float = v.dtype === 'float' || v.dtype === 'double';
  if (float && v.dims.length === 0) return g.scalar(data[0]);
  return g.constant(data, v.dims, float ? 'float32' : v.dtype === 'int' ? 'int64' : 'bool');
}
