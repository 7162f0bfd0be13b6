// Named float32 tensors: the one shape the project uses for parameters, gradients, optimizer moments and
// checkpoint contents. Data is row-major (C order), like ONNX and safetensors.

export interface Tensor {
  shape: number[];
  data: Float32Array;
}

/** Name -> tensor. Iteration order is insertion order; checkpoints sort names, so order never matters. */
export type TensorMap = Map<string, Tensor>;

/** Number of elements of a shape ([] is a scalar: 1 element). Throws on a non-integer or negative dim. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`invalid dimension ${d} in shape [${shape.join(', ')}]`);
    n *= d;
  }
  return n;
}

/** A tensor of the given shape, zero-filled unless data is given (data length must match). */
export function tensor(shape: readonly number[], data?: Float32Array | ArrayLike<number>): Tensor {
  const n = numel(shape);
  let arr: Float32Array;
  if (data === undefined) arr = new Float32Array(n);
  else arr = data instanceof Float32Array ? data : Float32Array.from(data);
  if (arr.length !== n) throw new Error(`tensor data has ${arr.length} elements, shape [${shape.join(', ')}] needs ${n}`);
  return { shape: [...shape], data: arr };
}

/** Deep copy (new shape arrays and new Float32Arrays). */
export function cloneTensorMap(m: TensorMap): TensorMap {
  const out: TensorMap = new Map();
  for (const [name, t] of m) out.set(name, { shape: [...t.shape], data: new Float32Array(t.data) });
  return out;
}

/** A map of zero tensors with the same names and shapes. */
export function zerosLike(m: TensorMap): TensorMap {
  const out: TensorMap = new Map();
  for (const [name, t] of m) out.set(name, { shape: [...t.shape], data: new Float32Array(t.data.length) });
  return out;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
