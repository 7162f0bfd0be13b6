// The learner's own resume file: the AdamW moments of one policy version, kept apart from the checkpoint that
// is broadcast to every follower (followers never need the moments, which are twice the parameters' bytes).
// One safetensors file:
//   adam.m.<name>, adam.v.<name>   the moments of every parameter of the checkpoint
//   __metadata__: format "recovery-grpo/optimizer@1", version, optimizer.step, checkpoint_digest (the sha256 of
//   the parameter checkpoint these moments belong to: a resume pairs them only with that checkpoint)
//   avg.<name>                     with grpo.ema: the GRPO weights' moving average (lib/optim/ema.ts), and
//   __metadata__ average.updates   its update count; absent without one (round 9)

import type { AdamWState } from '../optim/adamw.ts';
import type { AverageState } from '../optim/ema.ts';
import { decodeSafetensors, encodeSafetensors, SafetensorsError } from './safetensors.ts';
import { sha256Hex } from './digest.ts';
import { CheckpointError, OPTIM_M_PREFIX, OPTIM_V_PREFIX } from './checkpoint.ts';
import { formatShape, sameShape, type TensorMap } from './tensors.ts';

export const OPTIMIZER_FORMAT = 'recovery-grpo/optimizer@1';
const AVG_PREFIX = 'avg.';

export interface OptimizerStateFile {
  version: number;
  /** sha256 (hex) of the parameter checkpoint of `version`. */
  checkpointDigest: string;
  state: AdamWState;
  /** The learner's moving average of the weights at this version (grpo.ema), when it keeps one. */
  average?: AverageState;
}

export function encodeOptimizerState(f: OptimizerStateFile): { bytes: Uint8Array; digest: string } {
  const all: TensorMap = new Map();
  for (const [name, t] of f.state.m) all.set(OPTIM_M_PREFIX + name, t);
  for (const [name, t] of f.state.v) all.set(OPTIM_V_PREFIX + name, t);
  for (const [name, t] of f.average?.shadow ?? []) all.set(AVG_PREFIX + name, t);
  const bytes = encodeSafetensors(all, {
    format: OPTIMIZER_FORMAT,
    version: String(f.version),
    'optimizer.step': String(f.state.step),
    checkpoint_digest: f.checkpointDigest.replace(/^sha256:/, ''),
    ...(f.average ? { 'average.updates': String(f.average.updates) } : {}),
  });
  return { bytes, digest: sha256Hex(bytes) };
}

/**
 * Decodes a resume file and checks it belongs to the checkpoint `params` came from (its digest) and holds a
 * moment of the right shape for every parameter; the error names the file and the problem.
 */
export function decodeOptimizerState(bytes: Uint8Array, expect: { checkpointDigest: string; params: TensorMap; source: string }): OptimizerStateFile {
  const fail = (msg: string, field?: string): never => {
    throw new CheckpointError(`${expect.source}: ${msg}`, field);
  };
  let decoded;
  try {
    decoded = decodeSafetensors(bytes, expect.source);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new CheckpointError(e.message, e.field);
    throw e;
  }
  const { tensors, metadata } = decoded;
  if (metadata.format !== OPTIMIZER_FORMAT) fail(`metadata "format" is ${JSON.stringify(metadata.format)}, expected ${JSON.stringify(OPTIMIZER_FORMAT)}`, 'format');
  const want = expect.checkpointDigest.replace(/^sha256:/, '');
  if (metadata.checkpoint_digest !== want) fail(`belongs to checkpoint sha256 ${metadata.checkpoint_digest}, not ${want}`, 'checkpoint_digest');
  const uint = (k: string): number => {
    const s = metadata[k] ?? '';
    if (!/^(0|[1-9][0-9]*)$/.test(s)) fail(`metadata "${k}" must be a non-negative integer, got ${JSON.stringify(s)}`, k);
    return Number(s);
  };
  const m: TensorMap = new Map();
  const v: TensorMap = new Map();
  const avg: TensorMap = new Map();
  for (const [name, t] of tensors) {
    if (name.startsWith(OPTIM_M_PREFIX)) m.set(name.slice(OPTIM_M_PREFIX.length), t);
    else if (name.startsWith(OPTIM_V_PREFIX)) v.set(name.slice(OPTIM_V_PREFIX.length), t);
    else if (name.startsWith(AVG_PREFIX)) avg.set(name.slice(AVG_PREFIX.length), t);
    else fail(`tensor "${name}" is not an optimizer moment`, name);
  }
  const hasAverage = metadata['average.updates'] !== undefined;
  if (avg.size > 0 && !hasAverage) fail('average tensors present but metadata "average.updates" is missing', 'average.updates');
  const groups: Array<readonly [string, TensorMap]> = [[OPTIM_M_PREFIX, m], [OPTIM_V_PREFIX, v], ...(hasAverage ? [[AVG_PREFIX, avg] as const] : [])];
  for (const [prefix, moments] of groups) {
    for (const name of moments.keys()) if (!expect.params.has(name)) fail(`tensor "${prefix}${name}": no parameter "${name}"`, prefix + name);
    for (const [name, p] of expect.params) {
      const x = moments.get(name);
      if (!x) fail(`tensor "${prefix}${name}" is missing (optimizer state is incomplete)`, prefix + name);
      if (!sameShape(x!.shape, p.shape)) fail(`tensor "${prefix}${name}": shape ${formatShape(x!.shape)}, parameter has ${formatShape(p.shape)}`, prefix + name);
    }
  }
  return {
    version: uint('version'), checkpointDigest: want, state: { step: uint('optimizer.step'), m, v },
    ...(hasAverage ? { average: { updates: uint('average.updates'), shadow: avg } } : {}),
  };
}
