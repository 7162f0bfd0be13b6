// Original file: proto/recovery.proto

import type { Long } from '@grpc/proto-loader';

/**
 * A dense little-endian tensor. dtype is "float32" | "float16" | "uint8";
 * data.length == product(shape) * itemsize. Encode/decode with lib/transport/tensor.ts.
 */
export interface Tensor {
  'dtype'?: (string);
  'shape'?: (number | string | Long)[];
  'data'?: (Buffer | Uint8Array | string);
}

/**
 * A dense little-endian tensor. dtype is "float32" | "float16" | "uint8";
 * data.length == product(shape) * itemsize. Encode/decode with lib/transport/tensor.ts.
 */
export interface Tensor__Output {
  'dtype': (string);
  'shape': (string)[];
  'data': (Buffer);
}
