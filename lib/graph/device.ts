// Where a role's graphs run (docs/gpu.md). Its own module, free of onnxruntime, so the config schema and the
// option parsers can name the devices without loading the native runtime.

/**
 * cpu; webgpu: onnxruntime-node's own WebGPU provider (Dawn over Vulkan), in the npm package as shipped; cuda: its
 * CUDA provider, a separate download (`npm ci --onnxruntime-node-install=cuda12`). Operators a GPU provider lacks
 * run on the CPU provider beside it.
 */
export const DEVICES = ['cpu', 'cuda', 'webgpu'] as const;
export type Device = (typeof DEVICES)[number];

/** The device as a worker's Capabilities name it: `cpu`, `cuda:0`, `webgpu:0`. */
export function deviceLabel(device: Device): string {
  return device === 'cpu' ? 'cpu' : `${device}:0`;
}
