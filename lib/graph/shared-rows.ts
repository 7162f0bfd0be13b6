// A GRPO group's G actions restore one corrupted image, so the batch input `image` repeats each row G times and
// the policy network computes the same rows G times over. This rewrite makes a finished graph compute the part
// that depends on that input alone once per distinct row, and hands every other node the rows it read before,
// copied (Gather) from the distinct ones.
//
// Bit for bit: an op that computes each batch row from that row alone (a Conv, an elementwise op with batch-free
// operands, ...) gives a row the same bytes whatever the other rows are (test/models/threads.test.ts and
// test/grpo/reference-mean.test.ts check it for the policy's ops), so the rows every consumer reads are the bytes
// it read before, and the backward pass, which reads them, computes exactly what it computed. Only ops known to be
// row-wise are moved (ROW_WISE); any other op reads gathered rows, so an op this file does not know costs speed,
// never correctness.
import { Value, type Graph, type Node, type Shape } from './graph.ts';

/**
 * Input [M]: the rows of the repeated input to compute (the first of each run of equal rows). Row indices are fed
 * as float32 (exact below 2^24), as every other feed, and cast to int64 in the graph.
 */
export const DISTINCT_ROWS = 'distinct_rows';
/** Input [N]: for each row of the batch, its index in DISTINCT_ROWS (float32, as above). */
export const ROW_SOURCE = 'row_source';

const ELEMENTWISE = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Pow', 'Greater', 'Less', 'Equal', 'Where', 'And', 'Or', 'Not',
  'Relu', 'LeakyRelu', 'Sigmoid', 'Tanh', 'Exp', 'Log', 'Neg', 'Abs', 'Sqrt', 'Cast', 'Clip', 'Erf', 'Identity', 'HardSigmoid', 'Softplus',
]);
/** Ops that read input 0's rows one by one (their other inputs are batch-free). */
const PER_ROW = new Set(['Conv', 'ConvTranspose', 'AveragePool', 'MaxPool', 'GlobalAveragePool', 'InstanceNormalization']);

const batchFree = (v: Value): boolean => !v.shape.some((d) => typeof d === 'string');
const constInts = (v: Value | undefined): number[] | undefined =>
  v?.constant?.dtype === 'int64' ? Array.from(v.constant.data as BigInt64Array, Number) : undefined;

/** Whether `node`, whose repeated-row inputs are `shared`, computes each output row from the same input row alone. */
function rowWise(node: Node, shared: (v: Value) => boolean): boolean {
  if (!node.outputs.every((o) => o.shape[0] === 'N')) return false;
  const others = node.inputs.filter((v) => !shared(v));
  if (ELEMENTWISE.has(node.op)) {
    // a batch-free operand broadcasts over the rows; shared operands have the batch axis first, as the output
    const rank = node.outputs[0].rank;
    return others.every((v) => batchFree(v) && (v.rank < rank || v.shape[0] === 1)) && node.inputs.every((v) => !shared(v) || v.rank === rank);
  }
  if (PER_ROW.has(node.op)) return shared(node.inputs[0]) && others.every(batchFree);
  if (node.op === 'Concat') return node.inputs.every(shared) && node.attrs.axis !== 0;
  if (node.op === 'Reshape') {
    const spec = constInts(node.inputs[1]);
    return shared(node.inputs[0]) && spec?.[0] === 0; // 0: the batch axis kept as it is
  }
  if (node.op === 'Expand') {
    const spec = constInts(node.inputs[1]);
    return shared(node.inputs[0]) && spec?.[0] === 1;
  }
  if (node.op === 'Transpose') return shared(node.inputs[0]) && Array.isArray(node.attrs.perm) && node.attrs.perm[0] === 0;
  return false;
}

/**
 * Rewrites `g` (finished: autodiff done, outputs named) so that the nodes depending on `input` alone run once per
 * distinct row. Adds the inputs DISTINCT_ROWS [M] and ROW_SOURCE [N] (feeds: `repeatedRows`). Returns how many
 * nodes now run on the distinct rows.
 */
export function shareRepeatedRows(g: Graph, input: Value): number {
  if (input.shape[0] !== 'N') throw new Error(`shareRepeatedRows: input ${input.name} has no batch axis N first ([${input.shape}])`);
  const nodes: Node[] = [];
  const index = (name: string, dim: string): Value => {
    const node: Node = { op: 'Cast', inputs: [g.input(name, [dim])], outputs: [], attrs: { to: 7 }, domain: '' }; // 7: int64
    node.outputs = [new Value(g, g.fresh('rows'), 'int64', [dim], node)];
    nodes.push(node);
    return node.outputs[0];
  };
  const distinctRows = index(DISTINCT_ROWS, 'M');
  const rowSource = index(ROW_SOURCE, 'N');
  const onDistinct = (shape: Shape): Shape => ['M', ...shape.slice(1)];
  const gather = (v: Value, idx: Value, shape: Shape): { node: Node; out: Value } => {
    const node: Node = { op: 'Gather', inputs: [v, idx], outputs: [], attrs: { axis: 0 }, domain: '' };
    node.outputs = [new Value(g, g.fresh('rows'), v.dtype, shape, node)];
    return { node, out: node.outputs[0] };
  };

  const first = gather(input, distinctRows, onDistinct(input.shape));
  nodes.push(first.node);
  const distinct = new Map<Value, Value>([[input, first.out]]); // value at N rows -> the same at M rows
  const gathered = new Map<Value, Value>([[input, input]]); // value at N rows -> copied back from M rows
  const back = (v: Value): Value => {
    let out = gathered.get(v);
    if (!out) {
      const gt = gather(distinct.get(v)!, rowSource, v.shape);
      nodes.push(gt.node);
      out = gt.out;
      gathered.set(v, out);
    }
    return out;
  };
  const shared = (v: Value): boolean => distinct.has(v);
  let moved = 0;
  for (const node of g.nodes) {
    if (node.inputs.some(shared) && rowWise(node, shared)) {
      const m: Node = { ...node, inputs: node.inputs.map((v) => distinct.get(v) ?? v), outputs: [] };
      m.outputs = node.outputs.map((o) => new Value(g, g.fresh('m'), o.dtype, onDistinct(o.shape), m));
      node.outputs.forEach((o, i) => distinct.set(o, m.outputs[i]));
      nodes.push(m);
      moved++;
    } else {
      node.inputs = node.inputs.map((v) => (shared(v) ? back(v) : v));
      nodes.push(node);
    }
  }
  g.replaceNodes(nodes, (v) => (distinct.has(v) ? back(v) : v));
  return moved;
}

/**
 * The feeds of a rewritten graph for `n` rows of `data`: each run of byte-equal consecutive rows computed once
 * (a batch of one image twice, below). Rows that repeat without being neighbours are computed again (correct,
 * only slower).
 */
export function repeatedRows(data: Float32Array, n: number, field = 'image'): { distinct: Float32Array; source: Float32Array } {
  const { firsts, source } = equalRuns(data, n, field);
  // Never one row for several: onnxruntime's Conv (MLAS) threads a batch of one image differently from a larger
  // batch, and at 2 or more threads some of the U-Net's layers then give other bits (bench/shared-rows.ts's
  // check, test/models/shared-rows.test.ts). A batch of two or more takes the same path whatever its size.
  if (firsts.length === 1 && n > 1) firsts.push(1);
  return { distinct: Float32Array.from(firsts), source };
}

/**
 * The runs of byte-equal consecutive rows of `data` [n, ...]: the first row of each run, and each row's run
 * (repeatedRows; the reward graph's shared references, lib/models/feeds.ts rewardRowFeeds).
 */
export function equalRuns(data: Float32Array, n: number, field: string): { firsts: number[]; source: Float32Array } {
  if (!Number.isInteger(n) || n < 1 || data.length % n !== 0) throw new Error(`${field}: ${data.length} values do not split into n = ${n} rows`);
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const rowBytes = (data.length / n) * 4;
  const firsts = [0];
  const source = new Float32Array(n);
  for (let i = 1; i < n; i++) {
    const last = firsts.at(-1)!;
    if (bytes.compare(bytes, i * rowBytes, (i + 1) * rowBytes, last * rowBytes, (last + 1) * rowBytes) !== 0) firsts.push(i);
    source[i] = firsts.length - 1;
  }
  return { firsts, source };
}
