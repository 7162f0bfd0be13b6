// Runs the ONNX conformance cases of ../shared/onnx-conformance (PyTorch exports with PyTorch's outputs)
// through the importer: import, build with the file's weights as parameters, run in onnxruntime, compare.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { Graph } from '../../lib/graph/graph.ts';
import { decodeTensor, serialize } from '../../lib/graph/onnx.ts';
import { GraphSession, type Feeds } from '../../lib/graph/runtime.ts';
import { importOnnx } from '../../lib/import/onnx-import.ts';

const { onnx } = onnxProto;

export const CONFORMANCE_ROOT = join(import.meta.dirname, '../../../shared/onnx-conformance');

/** Cases a restoration policy does not need, with the reason (everything else must pass). */
export const SKIPPED: Record<string, string> = {
  test_operator_maxpool: '1-D max pooling over [N,C,L]: the importer supports 2-D (NCHW) pooling only',
  test_operator_non_float_params: 'int64 arithmetic on run-time tensors: policy networks compute in float, integers only as static shapes',
};

export interface CaseResult {
  name: string;
  /** Set when the case's own data cannot be represented in float32 (then nothing was compared). */
  unrepresentable?: string;
  /** max |ours - PyTorch| / max |PyTorch| over every output. */
  relError: number;
  outputs: number;
}

export function conformanceCases(): Array<{ name: string; dir: string }> {
  if (!existsSync(CONFORMANCE_ROOT)) return [];
  return ['pytorch-converted', 'pytorch-operator'].flatMap((set) =>
    readdirSync(join(CONFORMANCE_ROOT, set))
      .filter((n) => n.startsWith('test_'))
      .map((name) => ({ name, dir: join(CONFORMANCE_ROOT, set, name) })),
  );
}

const FLT_MAX = 3.4028234663852886e38;

/** Largest finite magnitude in a test tensor, read at its own precision (doubles included). */
function largestMagnitude(path: string): number {
  const t = onnx.TensorProto.decode(readFileSync(path));
  if (t.dataType !== onnx.TensorProto.DataType.DOUBLE || !t.rawData?.length) return 0;
  const d = new Float64Array(new Uint8Array(t.rawData).buffer);
  return d.reduce((m, v) => (Number.isFinite(v) ? Math.max(m, Math.abs(v)) : m), 0);
}

function readTensor(path: string): { dims: number[]; data: Float32Array } {
  const c = decodeTensor(onnx.TensorProto.decode(readFileSync(path)), path);
  const data = c.dtype === 'float32' ? (c.data as Float32Array) : Float32Array.from(c.data as BigInt64Array, Number);
  return { dims: c.dims, data };
}

export async function runCase(name: string, dir: string): Promise<CaseResult> {
  const data = join(dir, 'test_data_set_0');
  const tooLarge = readdirSync(data).map((f) => [f, largestMagnitude(join(data, f))] as const).find(([, m]) => m > FLT_MAX);
  if (tooLarge) return { name, relError: 0, outputs: 0, unrepresentable: `${tooLarge[0]} holds ${tooLarge[1].toExponential(2)}, beyond float32 (uninitialised float64 test data); the importer computes in float32` };
  const file = join(dir, 'model.onnx');
  const net = importOnnx(readFileSync(file), { source: file });
  const g = new Graph();
  const inputs = Object.fromEntries(net.inputs.map((io) => [io.name, g.input(io.name, io.shape)]));
  const outs = net.build(g, inputs, (p) => g.input(`param.${p.name}`, p.shape));
  outs.forEach((v, i) => g.output(`out${i}`, v));
  const session = await GraphSession.create(serialize(g));
  const feeds: Feeds = {};
  net.inputs.forEach((io, k) => (feeds[io.name] = readTensor(join(dir, 'test_data_set_0', `input_${k}.pb`))));
  for (const [pname, t] of net.weights) feeds[`param.${pname}`] = { data: t.data, dims: t.shape };
  const got = await session.run(feeds);
  await session.release();
  let worst = 0;
  outs.forEach((_, i) => {
    const ref = readTensor(join(dir, 'test_data_set_0', `output_${i}.pb`));
    const ours = got[`out${i}`];
    if (ours.dims.join(',') !== ref.dims.join(',')) throw new Error(`${name}: output ${i} has shape [${ours.dims}], PyTorch's is [${ref.dims}]`);
    let scale = 0;
    let err = 0;
    ref.data.forEach((r, j) => {
      // PyTorch's own NaNs (sqrt of a negative input) must be NaN here too.
      if (Number.isNaN(r) || Number.isNaN(ours.data[j])) {
        if (Number.isNaN(r) !== Number.isNaN(ours.data[j])) err = Infinity;
        return;
      }
      scale = Math.max(scale, Math.abs(r));
      err = Math.max(err, Math.abs(r - ours.data[j]));
    });
    worst = Math.max(worst, err / Math.max(scale, 1e-12));
  });
  return { name, relError: worst, outputs: outs.length };
}
