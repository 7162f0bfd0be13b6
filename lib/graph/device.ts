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

/** What runs a role's graphs on a device: the learner's trainer, or a rollout's policy of either family. */
export type DeviceUse = { role: 'learner' } | { role: 'rollout'; family: 'gaussian' | 'flow' };

/**
 * Why `use` is refused on `device`, or undefined. `npm run gpu-check` on an H200 (docs/gpu.md) found onnxruntime-node
 * 1.30's WebGPU provider wrong for two of the project's graphs: its 3x3 Conv with 6 input channels (the flow velocity
 * network's first layer reads x_t beside the corrupted image) gives values 71-102% off, and the GRPO graph's clipped
 * fraction differs from the CPU's by ~1e-4 for a cause not found. Training on numbers known to be wrong is refused;
 * the reward graph and the Gaussian policy's forward agreed (<= 2.6e-6) and run there.
 */
export function refusedOn(device: Device, use: DeviceUse): string | undefined {
  if (device !== 'webgpu') return undefined;
  if (use.role === 'learner') return "the learner's GRPO graph differs from the CPU's on onnxruntime-node's WebGPU provider (its clipped fraction, docs/gpu.md); use --device cpu or cuda for the learner";
  if (use.family === 'flow') return "the flow family's velocity network gives wrong values on onnxruntime-node's WebGPU provider (its 6-channel first convolution, docs/gpu.md); use --device cpu or cuda for a flow rollout worker";
  return undefined;
}
