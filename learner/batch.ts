// A TrainBatch decoded and checked at the edge: shapes against the run's resolution, one entry per sample in
// every per-sample field. Non-finite values are let through here and reported (`nonFinite`): a batch holding
// NaN/Inf is a skipped step (the seq still counts), not a malformed one.
import type { GrpoInputs } from '../lib/models/trainer.ts';
import { ssimMapSize } from '../lib/models/ssim.ts';
import type { FlowRows } from '../lib/flow/family.ts';
import { decodeFlowRows } from '../lib/flow/wire.ts';
import { decodeTensor, firstNonFinite, type HostTensor, type TrainBatch__Output } from '../lib/transport/index.ts';

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

/** A GRPO batch: the training graph's inputs (all but the reference mean, which the learner computes). */
export interface GrpoBatchInputs extends Omit<GrpoInputs, 'refMean'> {
  kind: 'grpo';
  /** One per sample, or empty when the orchestrator did not say (then logp_mismatch cannot be measured). */
  behaviourVersions: number[];
  /** Flow family: the training rows (logpOld is then theirs). */
  flow?: FlowRows;
}

export type DecodedBatch = (SftInputs | GrpoBatchInputs) & {
  /** The first field holding a non-finite value, e.g. "train_batch.advantages[3]"; undefined when all finite. */
  nonFinite: string | undefined;
};

/**
 * A GRPO batch whose every group was dropped (all its samples failed, or DAPO dropped them): no samples, no
 * tensors, or tensors of zero rows. The learner records its seq with an unchanged policy (nothing to train)
 * instead of refusing it, so a batch of failed samples never ends the run.
 */
export function isEmptyGrpoBatch(b: TrainBatch__Output): boolean {
  return b.kind === 'GRPO' && b.sample_ids.length === 0 && (b.image_rows ?? []).length === 0 && (!b.images || b.images.shape.length === 0 || Number(b.images.shape[0]) === 0);
}

/** The first non-finite value of `t` named by field and flat index (lib/transport/tensor.ts reads the bits). */
function nonFiniteIn(field: string, t: HostTensor): string | undefined {
  const i = firstNonFinite(t.data);
  return i < 0 ? undefined : `${field}[flat ${i}] = ${t.data[i]}`;
}

/**
 * The batch's policy inputs [n,3,H,W]: `images`, or `distinct_images` [K,3,H,W] with each row's image copied in by
 * `image_rows` (what the orchestrator sends for GRPO: a group's rows share one image). `sent` is the tensor as it came
 * and `field` its name, for the non-finite check (a bad value is named at its index in what was sent). `rowsOf` is
 * the batch's row count from a tensor already decoded (`targets` or `actions`, whose data arrived): image_rows is
 * checked against it, and every index against distinct_images, before n rows are allocated.
 */
function policyInputs(
  b: TrainBatch__Output, height: number, width: number,
  tensor: (name: 'images' | 'distinct_images', shape: ReadonlyArray<number | null>) => HostTensor,
  rowsOf: { field: string; n: number },
): { images: HostTensor; field: string; sent: HostTensor } {
  // absent (not []) in a batch built in process rather than decoded (the orchestrator's own, tests)
  const rows: readonly number[] = b.image_rows ?? [];
  if (!b.distinct_images) {
    if (rows.length !== 0) throw new BatchError('bad_input', `train_batch.image_rows: has ${rows.length} entries but distinct_images is missing`);
    const images = tensor('images', [null, 3, height, width]);
    return { images, field: 'train_batch.images', sent: images };
  }
  if (b.images) throw new BatchError('bad_input', 'train_batch.distinct_images: is set together with images; a batch carries one of them');
  const distinct = tensor('distinct_images', [null, 3, height, width]);
  const k = distinct.shape[0]!;
  const per = 3 * height * width;
  const n = rows.length;
  if (n === 0 && k !== 0) throw new BatchError('bad_input', `train_batch.image_rows: is empty; distinct_images (${k} images) needs one index per row`);
  if (n !== rowsOf.n) throw new BatchError('bad_input', `train_batch.image_rows: has ${n} entries, ${rowsOf.field} has ${rowsOf.n} samples`);
  rows.forEach((r, i) => {
    if (r >= k) throw new BatchError('bad_input', `train_batch.image_rows[${i}]: ${r} is out of range (distinct_images has ${k} images)`);
  });
  const data = new Float32Array(n * per);
  for (let i = 0; i < n; i++) data.set(distinct.data.subarray(rows[i]! * per, (rows[i]! + 1) * per), i * per);
  return { images: { dtype: distinct.dtype, shape: [n, 3, height, width], data }, field: 'train_batch.distinct_images', sent: distinct };
}

/** What the run trains, which decides what a TrainBatch must hold. */
export interface BatchShape {
  height: number;
  width: number;
  mode?: 'scalar' | 'dense';
  family?: 'gaussian' | 'flow';
  /** flow.steps, for family flow: a row's step index must lie in [0, flowSteps). */
  flowSteps?: number;
  /** grpo.identityAnchor > 0: the batch carries the identity member's advantages. */
  identity?: boolean;
  /** The most samples a batch may hold: the learner's max_batch (Capabilities), which it advertises. */
  maxBatch?: number;
}

/**
 * Decodes a TrainBatch for the run's policy and batch shape (`run`: its resolution, grpo.advantageMode and
 * family, and the learner's max_batch); BatchError (bad_input / unsupported) when it cannot be used.
 */
export function decodeTrainBatch(b: TrainBatch__Output, run: BatchShape): DecodedBatch {
  const { height, width, mode = 'scalar', family = 'gaussian', flowSteps, identity = false, maxBatch = Infinity } = run;
  const img = [null, 3, height, width] as const;
  const tensor = (name: 'images' | 'distinct_images' | 'targets' | 'actions' | 'logp_old' | 'advantages' | 'advantage_map' | 'identity_advantages' | 'identity_advantage_map', shape: ReadonlyArray<number | null>): HostTensor => {
    try {
      return decodeTensor(b[name], { field: `train_batch.${name}`, expectShape: shape, allowNonFinite: true });
    } catch (e) {
      throw new BatchError('bad_input', (e as Error).message);
    }
  };
  if (b.kind !== 'SFT' && b.kind !== 'GRPO') throw new BatchError('bad_input', `train_batch.kind: must be SFT or GRPO, got ${b.kind}`);
  // the rows' own tensor first: its data arrived, so it bounds what image_rows may make the learner allocate
  const perRowField = b.kind === 'SFT' ? 'targets' : 'actions';
  const perRow = tensor(perRowField, img);
  // a batch bigger than the learner said it takes is a configuration mismatch (--max-batch), refused before its
  // images are copied per row
  if (perRow.shape[0]! > maxBatch) {
    throw new BatchError('bad_input', `train_batch.${perRowField}: has ${perRow.shape[0]} samples, more than this learner's max_batch ${maxBatch} (start it with --max-batch ${perRow.shape[0]} or more, or make the run's batches smaller)`);
  }
  const { images, field: imagesField, sent: sentImages } = policyInputs(b, height, width, tensor, { field: `train_batch.${perRowField}`, n: perRow.shape[0]! });
  const n = images.shape[0]!;
  if (n === 0) throw new BatchError('bad_input', 'train_batch.images: the batch is empty');
  const sameN = (field: string, t: HostTensor) => {
    if (t.shape[0] !== n) throw new BatchError('bad_input', `train_batch.${field}: has ${t.shape[0]} samples, images has ${n}`);
  };
  if (b.sample_ids.length !== 0 && b.sample_ids.length !== n) {
    throw new BatchError('bad_input', `train_batch.sample_ids: has ${b.sample_ids.length} entries, expected ${n} (one per sample) or none`);
  }
  if (b.kind === 'SFT') {
    const targets = perRow;
    sameN('targets', targets);
    return { kind: 'sft', n, images: images.data, targets: targets.data, nonFinite: nonFiniteIn(imagesField, sentImages) ?? nonFiniteIn('train_batch.targets', targets) };
  }
  const actions = perRow;
  sameN('actions', actions);
  const dense = mode === 'dense';
  if (!dense && b.advantage_map) {
    throw new BatchError('unsupported', `train_batch.advantage_map: this run trains with grpo.advantageMode scalar; dense batches need a run configured with advantageMode dense`);
  }
  if (dense && !b.advantage_map) {
    throw new BatchError('bad_input', `train_batch.advantage_map: is missing; this run trains with grpo.advantageMode dense ([${n},3,${ssimMapSize(height)},${ssimMapSize(width)}] SSIM advantage maps)`);
  }
  let flow: { rows: FlowRows; nonFinite: string | undefined } | undefined;
  if (family === 'flow') {
    if (flowSteps === undefined) throw new Error('decodeTrainBatch: a flow run must give flowSteps (flow.steps)');
    if (b.logp_old) throw new BatchError('bad_input', 'train_batch.logp_old: must be absent in a flow batch (its behaviour log-probs are train_batch.flow_rows.logp_old)');
    try {
      flow = decodeFlowRows(b.flow_rows, n, height, dense, flowSteps);
    } catch (e) {
      throw new BatchError('bad_input', (e as Error).message);
    }
  } else if (b.flow_rows) throw new BatchError('unsupported', 'train_batch.flow_rows: this run trains model.family gaussian; flow batches need a run configured with model.family flow');
  const logpOld = flow ? { shape: [flow.rows.logpOld.length], data: flow.rows.logpOld } : tensor('logp_old', dense ? [n, 3, height, width] : [n]);
  const advantages = tensor('advantages', [n]);
  const advantageMap = dense ? tensor('advantage_map', [n, 3, ssimMapSize(height), ssimMapSize(width)]) : undefined;
  // grpo.identityAnchor > 0: the identity member's advantages (lib/grpo/batch.ts), present exactly when configured
  if (!identity && (b.identity_advantages || b.identity_advantage_map)) {
    throw new BatchError('unsupported', 'train_batch.identity_advantages: this run trains without an identity member (grpo.identityAnchor 0)');
  }
  if (identity && (!b.identity_advantages || (dense && !b.identity_advantage_map))) {
    throw new BatchError('bad_input', `train_batch.identity_advantages: ${b.identity_advantages ? 'identity_advantage_map' : 'identity_advantages'} is missing; this run trains with grpo.identityAnchor > 0`);
  }
  const idAdvantages = identity ? tensor('identity_advantages', [n]) : undefined;
  const idMap = identity && dense ? tensor('identity_advantage_map', [n, 3, ssimMapSize(height), ssimMapSize(width)]) : undefined;
  if (b.behaviour_versions.length !== 0 && b.behaviour_versions.length !== n) {
    throw new BatchError('bad_input', `train_batch.behaviour_versions: has ${b.behaviour_versions.length} entries, expected ${n} (one per sample) or none`);
  }
  return {
    kind: 'grpo', n, images: images.data, actions: actions.data, logpOld: logpOld.data, advantages: advantages.data,
    ...(advantageMap ? { advantageMap: advantageMap.data } : {}),
    ...(idAdvantages ? { identityAdvantages: idAdvantages.data } : {}),
    ...(idMap ? { identityAdvantageMap: idMap.data } : {}),
    ...(flow ? { flow: flow.rows } : {}),
    behaviourVersions: [...b.behaviour_versions],
    nonFinite: nonFiniteIn(imagesField, sentImages) ?? nonFiniteIn('train_batch.actions', actions)
      ?? flow?.nonFinite ?? (flow ? undefined : nonFiniteIn('train_batch.logp_old', logpOld as HostTensor)) ?? nonFiniteIn('train_batch.advantages', advantages)
      ?? (advantageMap ? nonFiniteIn('train_batch.advantage_map', advantageMap) : undefined)
      ?? (idAdvantages ? nonFiniteIn('train_batch.identity_advantages', idAdvantages) : undefined)
      ?? (idMap ? nonFiniteIn('train_batch.identity_advantage_map', idMap) : undefined),
  };
}

/**
 * Mean |logp_learner - logp_old| over samples whose behaviour version is `version`; NaN when there are none.
 * `logp` is [n] (the learner's mean log-density per sample); `logpOld` is [n] or, in dense mode, the per-element
 * behaviour log-density [n, ...], whose per-sample mean is compared.
 */
export function logpMismatch(logp: Float32Array, logpOld: Float32Array, behaviourVersions: readonly number[], version: number): number {
  const n = logp.length;
  const per = logpOld.length / n;
  let sum = 0;
  let count = 0;
  behaviourVersions.forEach((v, i) => {
    if (v !== version) return;
    let old = 0;
    if (per === 1) old = logpOld[i]!;
    else {
      for (let k = i * per; k < (i + 1) * per; k++) old += logpOld[k]!;
      old /= per;
    }
    sum += Math.abs(logp[i]! - old);
    count++;
  });
  return count ? sum / count : NaN;
}
