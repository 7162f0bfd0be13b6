// Where a role's graphs run (docs/gpu.md). Its own module, free of onnxruntime, so the config schema and the
// option parsers can name the devices without loading the native runtime.

/**
 * cpu; webgpu: onnxruntime-node's own WebGPU provider (Dawn over Vulkan), in the npm package as shipped; cuda: its
 * CUDA provider, a separate download (`ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci`). Operators a GPU provider lacks
 * run on the CPU provider beside it.
 */
export const DEVICES = ['cpu', 'cuda', 'webgpu'] as const;
export type Device = (typeof DEVICES)[number];

/** The device as a worker's Capabilities name it: `cpu`, `cuda:0`, `webgpu:0`. */
export function deviceLabel(device: Device): string {
  return device === 'cpu' ? 'cpu' : `${device}:0`;
}

/**
 * Why `role` is refused on `device`, or undefined. `npm run gpu-check` on an H200 (docs/gpu.md) found the learner's
 * GRPO graph on onnxruntime-node 1.30's WebGPU provider outside its criteria: gradients 5-70x what a one-ulp nudge
 * moves them on the CPU, and a dense clipped fraction of ~1e-4 where the CPU's is 0 (float noise in the log-density
 * against the 1e-4 clip range, round 17). Until a training run there and a criterion for such statistics say
 * otherwise, the learner is refused. The reward graph, the Gaussian policy and the flow family's rollout and ODE
 * sampler agree with the CPU there (<= 2.6e-6) and run.
 */
export function refusedOn(device: Device, role: 'rollout' | 'reward' | 'learner'): string | undefined {
  if (device === 'webgpu' && role === 'learner') return "the learner's GRPO graph differs from the CPU's on onnxruntime-node's WebGPU provider beyond gpu-check's criteria (its gradients and clipped fraction, docs/gpu.md); use --device cpu or cuda for the learner";
  return undefined;
}
