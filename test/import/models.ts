// Test networks for the importer: the project's own U-Net exported and re-imported, and a graph written
// the way torch.onnx.export writes one (dynamic batch and spatial sizes, shape arithmetic around Reshape,
// BatchNorm, MaxPool, Resize, a residual), built here with onnx-proto rather than by the project's exporter.
import onnxProto from 'onnx-proto';
import { Graph } from '../../lib/graph/graph.ts';
import { serialize } from '../../lib/graph/onnx.ts';
import { sub } from '../../lib/graph/ops.ts';
import { bakeParams, initPolicyParams, policyMean, type PolicySpec } from '../../lib/models/policy.ts';
import { testRandom } from '../../lib/graph/gradcheck.ts';
import type { TensorMap } from '../../lib/checkpoint/tensors.ts';

const { onnx } = onnxProto;

/** The project's U-Net residual f(image) = mean - image, its weights as initializers (head made non-zero). */
export function projectUnetOnnx(size = 16): { bytes: Uint8Array; params: TensorMap } {
  const spec: PolicySpec = { arch: 'unet', width: 4, depth: 2, logStd: -2, learnLogStd: false };
  const params = initPolicyParams(spec, 3);
  const rand = testRandom(5);
  params.get('head.weight')!.data.forEach((_, i, a) => (a[i] = (rand() - 0.5) * 0.2));
  const g = new Graph();
  const image = g.input('image', ['N', 3, size, size]);
  g.output('residual', sub(policyMean(spec, bakeParams(g, spec, params), image), image));
  return { bytes: serialize(g), params };
}

// Node attributes, as onnx-proto spells them.
export type Attr = onnxProto.onnx.IAttributeProto;
const A = onnx.AttributeProto.AttributeType;
export const ints = (name: string, v: number[]): Attr => ({ name, type: A.INTS, ints: v });
export const int = (name: string, v: number): Attr => ({ name, type: A.INT, i: v });
export const float = (name: string, v: number): Attr => ({ name, type: A.FLOAT, f: v });
export const str = (name: string, v: string): Attr => ({ name, type: A.STRING, s: new TextEncoder().encode(v) });

function floatInit(name: string, dims: number[], rand: () => number, scale = 0.3, offset = 0) {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = Float32Array.from({ length: n }, () => offset + (rand() - 0.5) * 2 * scale);
  return onnx.TensorProto.create({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(data.buffer) });
}
function intInit(name: string, values: number[]) {
  return onnx.TensorProto.create({ name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) });
}

export interface TorchStyleOptions {
  /** Replace one op type (to test refusal). */
  replaceOp?: [string, string];
  /** Output channels of the last convolution (3 satisfies the policy contract). */
  outChannels?: number;
}

/** A small encoder-decoder as torch.onnx.export (opset 13, dynamic axes) writes it. */
export function torchStyleOnnx(o: TorchStyleOptions = {}): Uint8Array {
  const rand = testRandom(11);
  const cOut = o.outChannels ?? 3;
  const node = (opType: string, input: string[], output: string[], attribute: Attr[] = [], name = `/${opType}_${output[0]}`) =>
    onnx.NodeProto.create({ opType: o.replaceOp?.[0] === opType ? o.replaceOp[1] : opType, input, output, attribute, name });
  const nodes = [
    node('Conv', ['input', 'enc.conv.weight', 'enc.conv.bias'], ['c1'], [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1])]),
    node('BatchNormalization', ['c1', 'enc.bn.weight', 'enc.bn.bias', 'enc.bn.running_mean', 'enc.bn.running_var'], ['b1'], [float('epsilon', 1e-5)]),
    node('LeakyRelu', ['b1'], ['a1'], [float('alpha', 0.2)]),
    node('MaxPool', ['a1'], ['p1'], [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])]),
    node('Conv', ['p1', 'mid.weight', 'mid.bias'], ['c2'], [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1])]),
    node('Sigmoid', ['c2'], ['s2']),
    node('Mul', ['c2', 's2'], ['m2']), // SiLU as exported
    node('Constant', [], ['scales'], [{ name: 'value', type: A.TENSOR, t: onnx.TensorProto.create({ dims: [4], dataType: 1, floatData: [1, 1, 2, 2] }) }]),
    node('Resize', ['m2', '', 'scales'], ['u2'], [str('mode', 'nearest'), str('coordinate_transformation_mode', 'asymmetric'), str('nearest_mode', 'floor')]),
    node('Concat', ['u2', 'a1'], ['cat'], [int('axis', 1)]),
    // x.view(x.size(0), x.size(1), -1) and back, with the shape arithmetic PyTorch writes.
    node('Shape', ['cat'], ['shp']),
    node('Gather', ['shp', 'idx0'], ['n'], [int('axis', 0)]),
    node('Gather', ['shp', 'idx1'], ['ch'], [int('axis', 0)]),
    node('Unsqueeze', ['n', 'axes0'], ['n1']),
    node('Unsqueeze', ['ch', 'axes0'], ['ch1']),
    node('Concat', ['n1', 'ch1', 'minus1'], ['flat_shape'], [int('axis', 0)]),
    node('Reshape', ['cat', 'flat_shape'], ['flat']),
    node('Reshape', ['flat', 'shp'], ['unflat']),
    node('Conv', ['unflat', 'head.weight', 'head.bias'], ['output'], [ints('kernel_shape', [1, 1])]),
  ];
  const initializer = [
    floatInit('enc.conv.weight', [8, 3, 3, 3], rand), floatInit('enc.conv.bias', [8], rand),
    floatInit('enc.bn.weight', [8], rand, 0.2, 1), floatInit('enc.bn.bias', [8], rand),
    floatInit('enc.bn.running_mean', [8], rand, 0.1), floatInit('enc.bn.running_var', [8], rand, 0.2, 1),
    floatInit('mid.weight', [8, 8, 3, 3], rand, 0.2), floatInit('mid.bias', [8], rand),
    floatInit('head.weight', [cOut, 16, 1, 1], rand), floatInit('head.bias', [cOut], rand),
    intInit('idx0', [0]), intInit('idx1', [1]), intInit('axes0', [0]), intInit('minus1', [-1]),
  ];
  // Gather with a scalar index, as PyTorch writes x.size(0).
  for (const t of initializer) if (t.name === 'idx0' || t.name === 'idx1') t.dims = [];
  for (const t of initializer) if (t.name === 'idx0' || t.name === 'idx1') t.rawData = t.rawData!.slice(0, 8);
  const dyn = (name: string, c: number) => onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'batch' }, { dimValue: c }, { dimParam: 'height' }, { dimParam: 'width' }] } } },
  });
  const graph = onnx.GraphProto.create({ name: 'main_graph', node: nodes, initializer, input: [dyn('input', 3)], output: [dyn('output', cOut)] });
  return onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 7, producerName: 'pytorch', producerVersion: '2.1.0', opsetImport: [{ domain: '', version: 13 }], graph })).finish();
}

/**
 * Group norm and bilinear interpolation as torch.onnx.export (opset 13) writes nn.GroupNorm and
 * F.interpolate(scale_factor=2, mode='bilinear'): Reshape + InstanceNormalization + Reshape + Mul + Add,
 * and output sizes computed from Shape with Cast, Mul and Floor.
 */
export function torchGroupNormOnnx(): Uint8Array {
  const rand = testRandom(13);
  const node = (opType: string, input: string[], output: string[], attribute: Attr[] = []) =>
    onnx.NodeProto.create({ opType, input, output, attribute, name: `/${opType}_${output[0]}` });
  const scalarConst = (out: string, v: number, dataType: number) =>
    node('Constant', [], [out], [{ name: 'value', type: A.TENSOR, t: onnx.TensorProto.create({ dims: [], dataType, ...(dataType === 1 ? { floatData: [v] } : { int64Data: [v] }) }) }]);
  const nodes = [
    node('Conv', ['input', 'conv.weight', 'conv.bias'], ['c'], [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1])]),
    node('Reshape', ['c', 'gn_shape'], ['grouped']),
    node('InstanceNormalization', ['grouped', 'gn_ones', 'gn_zeros'], ['normed'], [float('epsilon', 1e-5)]),
    node('Shape', ['c'], ['c_shape']),
    node('Reshape', ['normed', 'c_shape'], ['ungrouped']),
    node('Mul', ['ungrouped', 'gn.weight'], ['scaled']),
    node('Add', ['scaled', 'gn.bias'], ['gn']),
    node('LeakyRelu', ['gn'], ['a'], [float('alpha', 0.1)]),
    // sizes = floor(float(shape[2:4]) * 2)
    node('Shape', ['a'], ['a_shape']),
    node('Slice', ['a_shape', 'two', 'four', 'zero'], ['hw']),
    node('Cast', ['hw'], ['hw_f'], [int('to', 1)]),
    scalarConst('factor', 2, 1),
    node('Mul', ['hw_f', 'factor'], ['hw_scaled']),
    node('Floor', ['hw_scaled'], ['hw_floor']),
    node('Cast', ['hw_floor'], ['hw_i'], [int('to', 7)]),
    node('Slice', ['a_shape', 'zero', 'two', 'zero'], ['nc']),
    node('Concat', ['nc', 'hw_i'], ['sizes'], [int('axis', 0)]),
    node('Resize', ['a', '', '', 'sizes'], ['up'], [str('mode', 'linear'), str('coordinate_transformation_mode', 'pytorch_half_pixel')]),
    node('AveragePool', ['up'], ['down'], [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])]),
    node('Conv', ['down', 'head.weight', 'head.bias'], ['output'], [ints('kernel_shape', [1, 1])]),
  ];
  const initializer = [
    floatInit('conv.weight', [6, 3, 3, 3], rand), floatInit('conv.bias', [6], rand),
    intInit('gn_shape', [0, 3, -1]),
    onnx.TensorProto.create({ name: 'gn_ones', dims: [3], dataType: 1, floatData: [1, 1, 1] }),
    onnx.TensorProto.create({ name: 'gn_zeros', dims: [3], dataType: 1, floatData: [0, 0, 0] }),
    floatInit('gn.weight', [6, 1, 1], rand, 0.3, 1), floatInit('gn.bias', [6, 1, 1], rand),
    intInit('zero', [0]), intInit('two', [2]), intInit('four', [4]),
    floatInit('head.weight', [3, 6, 1, 1], rand), floatInit('head.bias', [3], rand),
  ];
  const dyn = (name: string, c: number) => onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'batch' }, { dimValue: c }, { dimParam: 'height' }, { dimParam: 'width' }] } } },
  });
  const graph = onnx.GraphProto.create({ name: 'main_graph', node: nodes, initializer, input: [dyn('input', 3)], output: [dyn('output', 3)] });
  return onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 7, producerName: 'pytorch', producerVersion: '2.1.0', opsetImport: [{ domain: '', version: 13 }], graph })).finish();
}

/** A tensor for `onnxModel`: float32 unless said (int64 for shapes and indices). */
export interface ModelTensor {
  name: string;
  dims: number[];
  values: number[];
  dtype?: 'float' | 'int64' | 'double';
}

/** A small ONNX graph from a node list (the review cases: a few nodes around the op in question). */
export interface ModelSpec {
  opset: number;
  inputs: Array<{ name: string; dims: Array<number | string>; elemType?: number }>;
  nodes: Array<{ op: string; inputs: string[]; outputs: string[]; attrs?: Attr[]; name?: string }>;
  inits?: ModelTensor[];
  outputs: string[];
}

export function modelTensor(t: ModelTensor): onnxProto.onnx.ITensorProto {
  const dtype = t.dtype ?? 'float';
  const raw = dtype === 'int64' ? BigInt64Array.from(t.values.map(BigInt)) : dtype === 'double' ? Float64Array.from(t.values) : Float32Array.from(t.values);
  return onnx.TensorProto.create({ name: t.name, dims: t.dims, dataType: { float: 1, int64: 7, double: 11 }[dtype], rawData: new Uint8Array(raw.buffer) });
}

export function onnxModel(m: ModelSpec): Uint8Array {
  const vi = (name: string, dims?: Array<number | string>, elemType = 1) => onnx.ValueInfoProto.create({
    name, type: { tensorType: { elemType, ...(dims ? { shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } : {}) } },
  });
  const graph = onnx.GraphProto.create({
    name: 'g',
    node: m.nodes.map((n, k) => onnx.NodeProto.create({ opType: n.op, name: n.name ?? `/${n.op}_${k}`, input: n.inputs, output: n.outputs, attribute: n.attrs ?? [] })),
    initializer: (m.inits ?? []).map(modelTensor),
    input: m.inputs.map((i) => vi(i.name, i.dims, i.elemType)),
    output: m.outputs.map((o) => vi(o)),
  });
  return onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: m.opset }], graph })).finish();
}
