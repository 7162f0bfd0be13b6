// A small, typed ONNX graph under construction. Values carry a static shape (the batch dimension may be
// symbolic) so that ops can infer shapes and gradient rules know which axes were broadcast.
// Nodes are appended in creation order, which is therefore a topological order.

export type DType = 'float32' | 'int64' | 'bool';
/** A dimension: a number, or a symbol (such as 'N') standing for a size known only at run time. */
export type Dim = number | string;
export type Shape = Dim[];

/**
 * A run-time dimension times a static factor is written 'N*3' (what x.view(B * C, H, W) makes of the batch B):
 * exact, since the element count is the symbol's size times static sizes. The symbol and its factor (1 for a
 * plain symbol, the symbol undefined for a number).
 */
export function dimParts(d: Dim): { symbol?: string; factor: number } {
  if (typeof d === 'number') return { factor: d };
  const m = /^(.+)\*(\d+)$/.exec(d);
  return m ? { symbol: m[1], factor: Number(m[2]) } : { symbol: d, factor: 1 };
}

/** The dimension `symbol` times `factor` ('N', 'N*3'). */
export const scaledDim = (symbol: string, factor: number): Dim => (factor === 1 ? symbol : `${symbol}*${factor}`);

export type AttrValue = number | number[] | string | { float: number } | { floats: number[] } | { raw: unknown };
export type Attrs = Record<string, AttrValue>;

export interface ConstData {
  dtype: DType;
  dims: number[];
  data: Float32Array | BigInt64Array | Uint8Array;
}

export class Value {
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly dtype: DType,
    readonly shape: Shape,
    /** The node that produced this value; undefined for graph inputs and constants. */
    readonly producer?: Node,
    readonly constant?: ConstData,
  ) {}
  get rank(): number {
    return this.shape.length;
  }
  toString(): string {
    return `${this.name}:${this.dtype}[${this.shape.join(',')}]`;
  }
}

export interface Node {
  op: string;
  inputs: Value[];
  outputs: Value[];
  attrs: Attrs;
  /** Operator set domain; '' is the default ONNX domain. */
  domain: string;
}

export interface OutputSpec {
  dtype: DType;
  shape: Shape;
}

export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: Value[] = [];
  readonly constants: Value[] = [];
  private readonly outputs = new Map<string, Value>();
  private readonly cse = new Map<string, Value[]>();
  private readonly scalarCache = new Map<string, Value>();
  private counter = 0;

  constructor(readonly opset = 17) {}

  fresh(prefix = 'v'): string {
    return `${prefix}${this.counter++}`;
  }

  input(name: string, shape: Shape, dtype: DType = 'float32'): Value {
    if (this.inputs.some((v) => v.name === name)) throw new Error(`graph input '${name}' declared twice`);
    const v = new Value(this, name, dtype, shape);
    this.inputs.push(v);
    return v;
  }

  /** A constant tensor. Float data is copied to float32. */
  constant(data: ArrayLike<number> | Float32Array, dims: number[], dtype: DType = 'float32', name?: string): Value {
    const n = dims.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new Error(`constant of shape [${dims}] needs ${n} values, got ${data.length}`);
    let stored: ConstData['data'];
    if (dtype === 'float32') stored = Float32Array.from(data);
    else if (dtype === 'int64') stored = BigInt64Array.from(Array.from(data, (x) => BigInt(Math.trunc(x))));
    else stored = Uint8Array.from(data, (x) => (x ? 1 : 0));
    const v = new Value(this, name ?? this.fresh('c'), dtype, dims, undefined, { dtype, dims, data: stored });
    this.constants.push(v);
    return v;
  }

  /** Scalar float constants are shared, so `x * 2` twice refers to one initializer. */
  scalar(x: number, dtype: DType = 'float32'): Value {
    const key = `${dtype}:${Object.is(x, -0) ? '-0' : x}`;
    let v = this.scalarCache.get(key);
    if (!v) {
      v = this.constant([x], [], dtype);
      this.scalarCache.set(key, v);
    }
    return v;
  }

  ints(values: number[]): Value {
    const key = `ints:${values.join(',')}`;
    let v = this.scalarCache.get(key);
    if (!v) {
      v = this.constant(values, [values.length], 'int64');
      this.scalarCache.set(key, v);
    }
    return v;
  }

  /**
   * Appends a node. Identical nodes (same op, inputs and attributes) are emitted once: gradient
   * rules freely rebuild the same sub-expressions, and this keeps the emitted graph small.
   */
  emit(op: string, inputs: Value[], attrs: Attrs, outputs: OutputSpec[], domain = ''): Value[] {
    for (const v of inputs) {
      if (v.graph !== this) throw new Error(`${op}: input ${v.name} belongs to another graph`);
    }
    const key = `${domain}:${op}(${inputs.map((v) => v.name).join(',')})${JSON.stringify(attrs)}`;
    const hit = this.cse.get(key);
    if (hit) return hit;
    const node: Node = { op, inputs, outputs: [], attrs, domain };
    node.outputs = outputs.map((o) => new Value(this, this.fresh(), o.dtype, o.shape, node));
    this.nodes.push(node);
    this.cse.set(key, node.outputs);
    return node.outputs;
  }

  /** The placeholder for an omitted optional input (serialised as the empty name). */
  none(): Value {
    this.noneValue ??= new Value(this, '', 'float32', []);
    return this.noneValue;
  }
  private noneValue?: Value;

  /** Names a value as a graph output. */
  output(name: string, v: Value): void {
    if (this.outputs.has(name)) throw new Error(`graph output '${name}' declared twice`);
    if (v.graph !== this) throw new Error(`output ${name} belongs to another graph`);
    this.outputs.set(name, v);
  }

  /**
   * Replaces the node list (a rewrite such as shared-rows.ts; `nodes` must be in topological order) and each
   * output's value by `remap`'s. Nodes emitted afterwards are not merged with earlier identical ones.
   */
  replaceNodes(nodes: Node[], remap: (v: Value) => Value): void {
    this.nodes.splice(0, this.nodes.length, ...nodes);
    for (const [name, v] of this.outputs) this.outputs.set(name, remap(v));
    this.cse.clear();
  }

  get outputList(): Array<[string, Value]> {
    return [...this.outputs.entries()];
  }

  getOutput(name: string): Value {
    const v = this.outputs.get(name);
    if (!v) throw new Error(`graph has no output '${name}'`);
    return v;
  }

  getInput(name: string): Value {
    const v = this.inputs.find((x) => x.name === name);
    if (!v) throw new Error(`graph has no input '${name}'`);
    return v;
  }
}

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number') throw new Error(`shape [${shape.join(',')}] has a symbolic dimension '${d}'`);
    n *= d;
  }
  return n;
}

export function sameDim(a: Dim, b: Dim): boolean {
  return a === b;
}
