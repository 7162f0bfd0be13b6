// What the coordinator sends, built from what a batch contains (itself a pure function of the batch number,
// lib/grpo/sampling.ts): SFT and GRPO TrainBatches, rollout and score tasks.
import type { RunConfig } from '../lib/config/index.ts';
import type { Sample } from '../lib/data/dataset.ts';
import { clamp01Into, stackPairs } from '../lib/data/image.ts';
import type { GrpoBatch } from '../lib/grpo/batch.ts';
import { rolloutNoiseSeed } from '../lib/grpo/sampling.ts';
import { ssimMapSize } from '../lib/models/ssim.ts';
import { encodeFlowRows } from '../lib/flow/wire.ts';
import { equalRuns } from '../lib/graph/shared-rows.ts';
import { encodeTensor, type OrchestratorMessage, type TrainBatch } from '../lib/transport/index.ts';

// Every array encoded here is made for its message and not changed afterwards, so the wire bytes are views of it
// (share): no copy per tensor (docs/performance-history/pipeline.md, round 6). `field` names it in an error.
const tensor = (data: Float32Array, shape: number[], field: string) => encodeTensor({ dtype: 'float32', shape, data }, { share: true, field });

const batchId = (config: RunConfig, seq: number) => `${config.run.id}-b${seq}`;

/** SFT batch `seq` from its samples (sftCursors(config, seq), in order). */
export function sftTrainBatch(config: RunConfig, seq: number, samples: readonly Sample[]): TrainBatch {
  const H = config.data.size;
  const { corrupted, clean } = stackPairs(samples);
  const shape = [samples.length, 3, H, H];
  return {
    batch_id: batchId(config, seq),
    batch_seq: seq,
    kind: 'SFT',
    lease_ms: config.orchestrator.leaseSeconds * 1000,
    images: tensor(corrupted, shape, 'train_batch.images'),
    targets: tensor(clean, shape, 'train_batch.targets'),
    sample_ids: samples.map((s) => s.id),
  };
}

/**
 * GRPO batch `seq` on the wire (assembleGrpoBatch made its contents). `rolloutWorkerOf`: the rollout worker of a
 * group by its sample id (TrainBatch.rollout_workers, which the learner reports back in its kept exclusion reports:
 * lib/grpo/exclusion-reports.ts); left out when not given or when a group has none.
 */
export function grpoTrainBatch(config: RunConfig, seq: number, t: GrpoBatch, rolloutWorkerOf?: (sampleId: string) => string | undefined): TrainBatch {
  const workers = rolloutWorkerOf ? t.sampleIds.map(rolloutWorkerOf) : [];
  const H = config.data.size;
  const h = ssimMapSize(H);
  const shape = [t.n, 3, H, H];
  return {
    batch_id: batchId(config, seq),
    batch_seq: seq,
    kind: 'GRPO',
    lease_ms: config.orchestrator.leaseSeconds * 1000,
    ...distinctImages(t, H),
    actions: tensor(t.actions, shape, 'train_batch.actions'),
    ...(t.flow ? { flow_rows: encodeFlowRows(t.flow, H) } : { logp_old: tensor(t.logpOld, t.advantageMap ? shape : [t.n], 'train_batch.logp_old') }),
    advantages: tensor(t.advantages, [t.n], 'train_batch.advantages'),
    advantage_map: t.advantageMap ? tensor(t.advantageMap, [t.n, 3, h, h], 'train_batch.advantage_map') : undefined,
    ...(t.identityAdvantages ? { identity_advantages: tensor(t.identityAdvantages, [t.n], 'train_batch.identity_advantages') } : {}),
    ...(t.identityAdvantageMap ? { identity_advantage_map: tensor(t.identityAdvantageMap, [t.n, 3, h, h], 'train_batch.identity_advantage_map') } : {}),
    behaviour_versions: t.behaviourVersions,
    sample_ids: t.sampleIds,
    group_indices: t.groupIndices,
    ...(workers.length && workers.every((w) => w !== undefined) ? { rollout_workers: workers as string[] } : {}),
  };
}

/**
 * A GRPO batch's policy inputs as TrainBatch.distinct_images and image_rows: each run of byte-equal rows once
 * (equalRuns, as the shared-rows graphs find them; a group's G rows are its one image, laid out together by
 * assembleGrpoBatch), so the batch carries (G-1)/G fewer image bytes. Compared, not assumed from the layout: a batch
 * laid out otherwise costs bytes, never a row its wrong image.
 */
function distinctImages(t: GrpoBatch, H: number): Pick<TrainBatch, 'distinct_images' | 'image_rows'> {
  const pix = 3 * H * H;
  const { firsts, source } = equalRuns(t.images, t.n, 'images');
  const distinct = new Float32Array(firsts.length * pix);
  firsts.forEach((r, k) => distinct.set(t.images.subarray(r * pix, (r + 1) * pix), k * pix));
  return { distinct_images: tensor(distinct, [firsts.length, 3, H, H], 'train_batch.distinct_images'), image_rows: Array.from(source) };
}

/**
 * GRPO batch `seq` when every group was dropped: no samples and no tensors. The learner records its seq with
 * the policy unchanged (skipped_reason 'empty') instead of training; the seq is accounted once, like any other.
 */
export function emptyGrpoTrainBatch(config: RunConfig, seq: number): TrainBatch {
  return { batch_id: batchId(config, seq), batch_seq: seq, kind: 'GRPO', lease_ms: config.orchestrator.leaseSeconds * 1000, sample_ids: [] };
}

/** The rollout task of a group: G items sharing one image, each with its noise seed. */
export function rolloutTaskMessage(
  config: RunConfig, o: { taskId: string; sampleId: string; image: Float32Array; minVersion: number; dense: boolean },
): (attempt: number, leaseMs: number) => OrchestratorMessage {
  const H = config.data.size;
  // Encoded once per task: a retry re-sends the same items (the image is not re-encoded per dispatch).
  const image = tensor(o.image, [3, H, H], 'rollout_task.items[0].image');
  const items = Array.from({ length: config.grpo.groupSize }, (_, g) => ({
    sample_id: o.sampleId,
    group_index: g,
    noise_seed: String(rolloutNoiseSeed(config.run.seed, o.sampleId, g)),
    image: g === 0 ? image : undefined,
  }));
  return (attempt, leaseMs) => ({
    rollout_task: {
      task_id: o.taskId,
      attempt,
      lease_ms: leaseMs,
      policy_version_min: o.minVersion,
      want_logp_map: o.dense,
      items,
    },
  });
}

/** The score task of a group: its actions clamped to [0, 1] (the image a user would see) and the clean image. */
export function scoreTaskMessage(
  config: RunConfig, o: { taskId: string; actions: readonly Float32Array[]; clean: Float32Array; dense: boolean },
): (attempt: number, leaseMs: number) => OrchestratorMessage {
  const H = config.data.size;
  const G = o.actions.length;
  const pix = o.clean.length;
  const candidates = new Float32Array(G * pix);
  o.actions.forEach((a, g) => clamp01Into(a, candidates, g * pix));
  // Encoded once per task, whatever the number of attempts.
  const candidatesTensor = tensor(candidates, [G, 3, H, H], 'score_task.candidates');
  const references = tensor(o.clean, [1, 3, H, H], 'score_task.references');
  return (attempt, leaseMs) => ({
    score_task: {
      task_id: o.taskId,
      attempt,
      lease_ms: leaseMs,
      candidates: candidatesTensor,
      references,
      want_ssim_map: o.dense,
    },
  });
}
