// What a policy needs from an imported network: an image [N,3,H,W] in and a residual [N,3,H,W] out, at
// the run's resolution; any other input (a flow policy's time embedding) must be named by configuration.

import type { Shape } from '../graph/graph.ts';
import type { ImportedNetwork } from './onnx-import.ts';

export interface ContractOptions {
  /** The image input's name (default: the graph's first input). */
  image?: string;
  /** Inputs besides the image that the policy will feed (for example 't_embedding'). */
  extraInputs?: string[];
}

export interface PolicyContract {
  image: string;
  extraInputs: string[];
  output: string;
  /** The image shape the network was imported at. */
  shape: Shape;
}

const fmt = (s: Shape): string => `[${s.join(',')}]`;

export function checkPolicyContract(net: ImportedNetwork, opts: ContractOptions = {}): PolicyContract {
  const src = net.source;
  const imageName = opts.image ?? net.inputs[0]?.name;
  const image = net.inputs.find((i) => i.name === imageName);
  if (!image) throw new Error(`${src}: contract: no graph input '${imageName}' (inputs: ${net.inputs.map((i) => i.name).join(', ') || 'none'})`);
  if (image.shape.length !== 4 || image.shape[1] !== 3) {
    throw new Error(`${src}: contract: the image input '${image.name}' must be [N,3,H,W], the graph declares ${fmt(image.shape)}`);
  }
  const extra = opts.extraInputs ?? [];
  for (const i of net.inputs) {
    if (i.name !== image.name && !extra.includes(i.name)) {
      throw new Error(`${src}: contract: input '${i.name}' ${fmt(i.shape)} is neither the image nor named as an extra input (configure it, for example a flow policy's time embedding)`);
    }
  }
  for (const name of extra) if (!net.inputs.some((i) => i.name === name)) throw new Error(`${src}: contract: the extra input '${name}' is not a graph input`);
  if (net.outputs.length < 1) throw new Error(`${src}: contract: the graph has no output`);
  const out = net.outputs[0];
  const [n, , h, w] = image.shape;
  if (out.shape.length !== 4 || out.shape[1] !== 3 || out.shape[0] !== n || out.shape[2] !== h || out.shape[3] !== w) {
    throw new Error(`${src}: contract: the output '${out.name}' must be [N,3,H,W] like the image ${fmt(image.shape)}, the graph computes ${fmt(out.shape)}`);
  }
  return { image: image.name, extraInputs: extra, output: out.name, shape: image.shape };
}
