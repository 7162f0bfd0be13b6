// Serialises a Graph to an ONNX ModelProto (dead nodes removed), and splices an external ONNX model
// (for example a CLIP vision tower) into a Graph under construction.

import onnxProto from 'onnx-proto';
import { Graph, Value, type AttrValue, type ConstData, type DType, type Node, type Shape } from './graph.ts';

const { onnx } = onnxProto;
type AttributeProto = onnxProto.onnx.IAttributeProto;
type TensorProto = onnxProto.onnx.ITensorProto;

const DTYPE_CODE: Record<DType, number> = { float32: 1, int64: 7, bool: 9 };

function littleEndianBytes(c: ConstData): Uint8Array {
  const d = c.data;
  return new Uint8Array(d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength));
}

function tensorProto(name: string, c: ConstData): TensorProto {
  return onnx.TensorProto.create({ name, dims: c.dims, dataType: DTYPE_CODE[c.dtype], rawData: littleEndianBytes(c) });
}

function valueInfo(name: string, dtype: DType, shape: Shape) {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: DTYPE_CODE[dtype],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

function attribute(name: string, v: AttrValue): AttributeProto {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: ${v} is not an integer (use { float })`);
    return onnx.AttributeProto.create({ name, type: A.INT, i: v });
  }
  if (typeof v === 'string') return onnx.AttributeProto.create({ name, type: A.STRING, s: new TextEncoder().encode(v) });
  if (Array.isArray(v)) return onnx.AttributeProto.create({ name, type: A.INTS, ints: v });
  if ('float' in v) return onnx.AttributeProto.create({ name, type: A.FLOAT, f: v.float });
  if ('floats' in v) return onnx.AttributeProto.create({ name, type: A.FLOATS, floats: v.floats });
  return onnx.AttributeProto.fromObject({ ...(v.raw as object), name });
}

/** Nodes (in order) that the named outputs depend on. */
function liveNodes(g: Graph): Node[] {
  const live = new Set<Node>();
  const stack: Value[] = g.outputList.map(([, v]) => v);
  while (stack.length) {
    const v = stack.pop()!;
    if (v.producer && !live.has(v.producer)) {
      live.add(v.producer);
      stack.push(...v.producer.inputs);
    }
  }
  return g.nodes.filter((n) => live.has(n));
}

export interface ModelOptions {
  producer?: string;
  docString?: string;
  metadata?: Record<string, string>;
}

export function toModelProto(g: Graph, opts: ModelOptions = {}) {
  const nodes = liveNodes(g);
  const names = new Map<Value, string>();
  const nodeProtos = [];
  const extraOutputs: Node[] = [];
  const taken = new Set(g.inputs.map((v) => v.name));
  // A graph output takes over the name of the value it exposes, unless that value is an input, a
  // constant or already exposed, in which case an Identity node carries it.
  for (const [name, v] of g.outputList) {
    if (v.producer && !names.has(v) && !taken.has(name)) names.set(v, name);
    else extraOutputs.push({ op: 'Identity', inputs: [v], outputs: [new Value(g, name, v.dtype, v.shape)], attrs: {}, domain: '' });
    taken.add(name);
  }
  const nameOf = (v: Value): string => names.get(v) ?? v.name;
  const usedConstants = new Set<Value>();
  for (const n of [...nodes, ...extraOutputs]) {
    for (const v of n.inputs) if (v.constant) usedConstants.add(v);
    nodeProtos.push(
      onnx.NodeProto.create({
        opType: n.op,
        domain: n.domain,
        input: n.inputs.map(nameOf),
        output: n.outputs.map(nameOf),
        attribute: Object.entries(n.attrs).map(([k, a]) => attribute(k, a)),
      }),
    );
  }
  for (const [, v] of g.outputList) if (v.constant) usedConstants.add(v);
  const graph = onnx.GraphProto.create({
    name: 'recovery_grpo',
    node: nodeProtos,
    input: g.inputs.map((v) => valueInfo(v.name, v.dtype, v.shape)),
    output: g.outputList.map(([name, v]) => valueInfo(name, v.dtype, v.shape)),
    initializer: g.constants.filter((c) => usedConstants.has(c)).map((c) => tensorProto(c.name, c.constant!)),
  });
  return onnx.ModelProto.create({
    irVersion: 8,
    producerName: opts.producer ?? 'recovery-grpo',
    docString: opts.docString ?? '',
    opsetImport: [{ domain: '', version: g.opset }],
    metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph,
  });
}

export function serialize(g: Graph, opts: ModelOptions = {}): Uint8Array {
  return onnx.ModelProto.encode(toModelProto(g, opts)).finish();
}

export function decodeModel(bytes: Uint8Array, what = 'ONNX model') {
  try {
    return onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new Error(`${what}: not a valid ONNX model (${(e as Error).message})`);
  }
}

/** The default-domain opset a model was written for. */
export function modelOpset(bytes: Uint8Array, what = 'ONNX model'): number {
  const m = decodeModel(bytes, what);
  const entry = (m.opsetImport ?? []).find((o) => !o.domain);
  return Number(entry?.version ?? 1);
}

/** Decodes a TensorProto's data (float, double, int32 and int64; doubles narrow to float32). */
export function decodeTensor(t: TensorProto, what: string): ConstData {
  const dims = (t.dims ?? []).map(Number);
  const n = dims.reduce((a, b) => a * b, 1);
  // Copy: protobufjs hands out Node Buffers that are views into a shared pool.
  const raw = t.rawData && t.rawData.length ? new Uint8Array(t.rawData) : null;
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) throw new Error(`${what}: initializer ${t.name} uses external data, which is not supported; save the model with weights inside`);
  const T = onnx.TensorProto.DataType;
  const need = (bytes: number, typed: ArrayLike<unknown> | null | undefined): void => {
    if (raw && raw.length < n * bytes) throw new Error(`${what}: tensor ${t.name} holds ${raw.length} bytes, its shape [${dims}] needs ${n * bytes}`);
    // the typed field (float_data, ...) must hold exactly the shape's values: a short one read as zeros
    if (!raw && (typed?.length ?? 0) !== n) throw new Error(`${what}: tensor ${t.name} holds ${typed?.length ?? 0} values, its shape [${dims}] needs ${n}`);
  };
  if (t.dataType === T.FLOAT) {
    need(4, t.floatData);
    const data = raw ? new Float32Array(raw.buffer, 0, n) : Float32Array.from(t.floatData ?? []);
    return { dtype: 'float32', dims, data };
  }
  if (t.dataType === T.DOUBLE) {
    need(8, t.doubleData);
    const data = raw ? Float32Array.from(new Float64Array(raw.buffer, 0, n)) : Float32Array.from(t.doubleData ?? []);
    return { dtype: 'float32', dims, data };
  }
  if (t.dataType === T.INT64) {
    need(8, t.int64Data);
    const data = raw ? new BigInt64Array(raw.buffer, 0, n) : BigInt64Array.from((t.int64Data ?? []).map((x) => BigInt(x.toString())));
    return { dtype: 'int64', dims, data };
  }
  if (t.dataType === T.INT32) {
    need(4, t.int32Data);
    const ints = raw ? Array.from(new Int32Array(raw.buffer, 0, n)) : (t.int32Data ?? []);
    return { dtype: 'int64', dims, data: BigInt64Array.from(ints, (x) => BigInt(x)) };
  }
  throw new Error(`${what}: tensor ${t.name} has ONNX data type ${t.dataType}; only float32, float64, int32 and int64 are supported`);
}

/**
 * Splices the nodes and weights of an external single-input model into `g`, feeding its input from
 * `input`. Every name is prefixed, so several models can be spliced into one graph. Returns the model's
 * outputs with their declared shapes (the first dimension is taken to be the batch, as `input`'s).
 */
/** The graph's inputs that are not initializers (an export with keep_initializers_as_inputs lists both). */
export function graphInputs(graph: onnxProto.onnx.IGraphProto | null | undefined): onnxProto.onnx.IValueInfoProto[] {
  const inits = new Set((graph?.initializer ?? []).map((t) => t.name!));
  return (graph?.input ?? []).filter((i) => !inits.has(i.name!));
}

export function spliceModel(g: Graph, bytes: Uint8Array, input: Value, prefix: string, what = 'ONNX model'): Value[] {
  const m = decodeModel(bytes, what);
  const opset = modelOpset(bytes, what);
  if (opset > g.opset) throw new Error(`${what}: uses opset ${opset}, newer than this graph's ${g.opset}`);
  const graph = m.graph;
  if (!graph) throw new Error(`${what}: has no graph`);
  const realInputs = graphInputs(graph);
  if (realInputs.length !== 1) throw new Error(`${what}: expected exactly one input (pixel_values), found ${realInputs.map((i) => i.name).join(', ') || 'none'}`);
  const values = new Map<string, Value>([[realInputs[0].name!, input]]);
  for (const t of graph.initializer ?? []) {
    const c = decodeTensor(t, what);
    values.set(t.name!, g.constant(c.dtype === 'int64' ? Array.from(c.data as BigInt64Array, Number) : (c.data as Float32Array), c.dims, c.dtype, `${prefix}${t.name}`));
  }
  const declared = new Map((graph.output ?? []).map((o) => [o.name!, o]));
  const lookup = (name: string): Value => {
    const v = values.get(name);
    if (!v) throw new Error(`${what}: node input '${name}' is produced by nothing (is the graph sorted?)`);
    return v;
  };
  for (const n of graph.node ?? []) {
    if (n.opType === 'Constant') {
      const t = (n.attribute ?? []).find((a) => a.name === 'value')?.t;
      if (!t) throw new Error(`${what}: Constant node ${n.name} without a tensor 'value' is not supported`);
      const c = decodeTensor(t, what);
      values.set(n.output![0], g.constant(c.dtype === 'int64' ? Array.from(c.data as BigInt64Array, Number) : (c.data as Float32Array), c.dims, c.dtype));
      continue;
    }
    const inputs = (n.input ?? []).map((name) => (name === '' ? g.none() : lookup(name)));
    const outSpecs = (n.output ?? []).map((name) => {
      const o = declared.get(name);
      const dims = o?.type?.tensorType?.shape?.dim ?? [];
      const shape: Shape = dims.map((d, i) => (i === 0 ? input.shape[0] : d.dimValue != null ? Number(d.dimValue) : `${prefix}${d.dimParam ?? `d${i}`}`));
      return { dtype: 'float32' as DType, shape };
    });
    const attrs = Object.fromEntries((n.attribute ?? []).map((a) => [a.name!, { raw: onnx.AttributeProto.toObject(a as InstanceType<typeof onnx.AttributeProto>) } as AttrValue]));
    const outs = g.emit(n.opType!, inputs, attrs, outSpecs, n.domain ?? '');
    (n.output ?? []).forEach((name, i) => values.set(name, outs[i]));
  }
  return (graph.output ?? []).map((o) => lookup(o.name!));
}
