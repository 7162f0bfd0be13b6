// A TrainBatch decoded and checked at the edge: shapes against the run's resolution, one entry per sample in
// every per-sample field. Non-finite values are let through here and reported (`nonFinite`): a batch holding
// NaN/Inf is a skipped step (the seq still counts), not a malformed one.
import { decodeTensor, type HostTensor, type TrainBatch__Output } from '../lib/transport/index.ts';

export class BatchError extends Error {
  constructor(readonly code: 'bad_input' | 'unsupported', message: string) {
    super(message);
    this.name = 'BatchError';
  }
}

export interface SftInputs {
  kind: 'sft';
  n: number;
  images: Float32Array;
  targets: Float32Array;
}

export interface GrpoBatchInputs {
  kind: 'grpo';
  n: number;
  images: Float32Array;
  actions: Float32Array;
  logpOld: Float32Array;
  advantages: Float32Array;
  /** One per sample, or empty when the orchestrator did not say (then logp_mismatch cannot be measured). */
  behaviourVersions: number[];
}

export type DecodedBatch = (SftInputs | GrpoBatchInputs) & {
  /** The first field holding a non-finite value, e.g. "train_batch.advantages[3]"; undefined when all finite. */
  nonFinite: string | undefined;
};

function firstNonFinite(field: string, t: HostTensor): string | undefined {
  const i = t.data.findIndex((v) => !Number.isFinite(v));
  return i < 0 ? undefined : `${field}[flat ${i}] = ${t.data[i]}`;
}

/** Decodes a TrainBatch for a policy of `height` x `width`; BatchError (bad_input / unsupported) when it cannot be used. */
export function decodeTrainBatch(b: TrainBatch__Output, height: number, width: number): DecodedBatch {
  const img = [null, 3, height, width] as const;
  const tensor = (name: 'images' | 'targets' | 'actions' | 'logp_old' | 'advantages', shape: ReadonlyArray<number | null>): HostTensor => {
    try {
      return decodeTensor(b[name], { field: `train_batch.${name}`, expectShape: shape, allowNonFinite: true });
    } catch (e) {
      throw new BatchError('bad_input', (e as Error).message);
    }
  };
  if (b.kind !== 'SFT' && b.kind !== 'GRPO') throw new BatchError('bad_input', `train_batch.kind: must be SFT or GRPO, got ${b.kind}`);
  const images = tensor('images', img);
  const n = images.shape[0]!;
  if (n === 0) throw new BatchError('bad_input', 'train_batch.images: the batch is empty');
  const sameN = (field: string, t: HostTensor) => {
    if (t.shape[0] !== n) throw new BatchError('bad_input', `train_batch.${field}: has ${t.shape[0]} samples, images has ${n}`);
  };
  if (b.sample_ids.length !== 0 && b.sample_ids.length !== n) {
    throw new BatchError('bad_input', `train_batch.sample_ids: has ${b.sample_ids.length} entries, expected ${n} (one per sample) or none`);
  }
  if (b.kind === 'SFT') {
    const targets = tensor('targets', [n, 3, height, width]);
    return { kind: 'sft', n, images: images.data, targets: targets.data, nonFinite: firstNonFinite('train_batch.images', images) ?? firstNonFinite('train_batch.targets', targets) };
  }
  const actions = tensor('actions', img);
  sameN('actions', actions);
  const logpOld = tensor('logp_old', [n]);
  let advShape: number[];
  try {
    advShape = decodeTensor(b.advantages, { field: 'train_batch.advantages', allowNonFinite: true }).shape;
  } catch (e) {
    throw new BatchError('bad_input', (e as Error).message);
  }
  if (advShape.length === 4) {
    throw new BatchError('unsupported', `train_batch.advantages: dense per-pixel advantages [${advShape}] are not supported by this learner yet (grpo.advantageMode dense is later work); send one advantage per sample, [${n}]`);
  }
  const advantages = tensor('advantages', [n]);
  if (b.behaviour_versions.length !== 0 && b.behaviour_versions.length !== n) {
    throw new BatchError('bad_input', `train_batch.behaviour_versions: has ${b.behaviour_versions.length} entries, expected ${n} (one per sample) or none`);
  }
  return {
    kind: 'grpo', n, images: images.data, actions: actions.data, logpOld: logpOld.data, advantages: advantages.data,
    behaviourVersions: [...b.behaviour_versions],
    nonFinite: firstNonFinite('train_batch.images', images) ?? firstNonFinite('train_batch.actions', actions)
      ?? firstNonFinite('train_batch.logp_old', logpOld) ?? firstNonFinite('train_batch.advantages', advantages),
  };
}

/** Mean |logp_learner - logp_old| over samples whose behaviour version is `version`; NaN when there are none. */
export function logpMismatch(logp: Float32Array, logpOld: Float32Array, behaviourVersions: readonly number[], version: number): number {
  let sum = 0;
  let count = 0;
  behaviourVersions.forEach((v, i) => {
    if (v !== version) return;
    sum += Math.abs(logp[i]! - logpOld[i]!);
    count++;
  });
  return count ? sum / count : NaN;
}
