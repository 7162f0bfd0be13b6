// Original file: proto/recovery.proto

import type { TrainKind as _recovery_v1_TrainKind, TrainKind__Output as _recovery_v1_TrainKind__Output } from '../../recovery/v1/TrainKind.ts';
import type { Tensor as _recovery_v1_Tensor, Tensor__Output as _recovery_v1_Tensor__Output } from '../../recovery/v1/Tensor.ts';
import type { FlowRows as _recovery_v1_FlowRows, FlowRows__Output as _recovery_v1_FlowRows__Output } from '../../recovery/v1/FlowRows.ts';
import type { WorkerIdRecord as _recovery_v1_WorkerIdRecord, WorkerIdRecord__Output as _recovery_v1_WorkerIdRecord__Output } from '../../recovery/v1/WorkerIdRecord.ts';

/**
 * Exactly-once: batch_seq counts 1, 2, 3, ... in the run. The learner applies a batch only if
 * batch_seq == last applied + 1; a batch_seq it already holds is acknowledged with applied = false,
 * skipped_reason = "duplicate" and the current version; the checkpoint records the last batch_seq/batch_id.
 */
export interface TrainBatch {
  /**
   * unique in the run, for logs ("<run_id>-b<seq>")
   */
  'batch_id'?: (string);
  'batch_seq'?: (number);
  'kind'?: (_recovery_v1_TrainKind);
  'lease_ms'?: (number);
  /**
   * [N,3,H,W] policy inputs (corrupted); GRPO may send distinct_images instead
   */
  'images'?: (_recovery_v1_Tensor | null);
  /**
   * SFT: [N,3,H,W] clean images
   */
  'targets'?: (_recovery_v1_Tensor | null);
  /**
   * GRPO: [N,3,H,W]
   */
  'actions'?: (_recovery_v1_Tensor | null);
  /**
   * GRPO: [N] behaviour log-probs
   */
  'logp_old'?: (_recovery_v1_Tensor | null);
  /**
   * GRPO: [N] the advantage (scalar mode) or its scalar reward terms' part (dense)
   */
  'advantages'?: (_recovery_v1_Tensor | null);
  /**
   * GRPO: [N] policy version that produced each action
   */
  'behaviour_versions'?: (number)[];
  /**
   * [N]
   */
  'sample_ids'?: (string)[];
  /**
   * GRPO: [N]
   */
  'group_indices'?: (number)[];
  /**
   * Dense advantages (grpo.advantageMode = dense): the group-centred SSIM advantage maps [N,3,H-10,W-10];
   * `advantages` [N] then holds the scalar reward terms' part and `logp_old` the per-element behaviour
   * log-density [N,3,H,W].
   */
  'advantage_map'?: (_recovery_v1_Tensor | null);
  /**
   * model.family = flow: the rows the Flow-GRPO graph trains on; `logp_old` above is then absent.
   */
  'flow_rows'?: (_recovery_v1_FlowRows | null);
  /**
   * grpo.identityAnchor > 0 (docs/grpo.md, "Identity member"): the identity member's advantage [N] (dense: its
   * scalar part) and, dense, its SSIM advantage map [N,3,H-10,W-10], on the first row of each group, zeros on
   * the others. Absent when the run has no identity member.
   */
  'identity_advantages'?: (_recovery_v1_Tensor | null);
  'identity_advantage_map'?: (_recovery_v1_Tensor | null);
  /**
   * GRPO, in place of `images`: each distinct policy input once [K,3,H,W] (a group's G rows share one image)
   * and, per row, the index of its image in it ([N], each < K). A writer sets `images` or these two, not both;
   * a reader that predates them finds `images` missing and refuses the batch naming it.
   */
  'distinct_images'?: (_recovery_v1_Tensor | null);
  'image_rows'?: (number)[];
  /**
   * GRPO ([N] or empty): the rollout worker id whose accepted rollout result carried each action's group, as the
   * orchestrator attributed it. The learner trains nothing from it: where its checks exclude rows of the batch, it
   * keeps a report of the batch's checked results per worker (lib/grpo/exclusion-reports.ts) in the run state before
   * publishing the batch's version, so an orchestrator that acknowledges the batch without its TrainResult (killed
   * before writing the acknowledgement, then a catch-up or a 'duplicate') still counts them (docs/security.md). Not
   * in the batch digest (lib/transport/batch-digest.ts): an older learner drops it and must compute the same digest.
   * Empty (an older orchestrator, an SFT batch): no report.
   */
  'rollout_workers'?: (string)[];
  /**
   * The orchestrator's worker-id record as it stands when the batch is sent (round 33): the quarantined rollout worker
   * ids and the worker ids bound to role tokens, the run state's own (orchestrator/run-state.ts), bounded
   * (lib/transport/worker-id-record.ts). The learner trains nothing from it: it records the newest batch's in every
   * checkpoint (extra.worker_ids), so an orchestrator whose run state was lost with the NATS store takes them back
   * from the checkpoint the learner put back (docs/reliability.md). Not in the batch digest, like rollout_workers.
   * Absent: an older orchestrator.
   */
  'worker_ids'?: (_recovery_v1_WorkerIdRecord | null);
}

/**
 * Exactly-once: batch_seq counts 1, 2, 3, ... in the run. The learner applies a batch only if
 * batch_seq == last applied + 1; a batch_seq it already holds is acknowledged with applied = false,
 * skipped_reason = "duplicate" and the current version; the checkpoint records the last batch_seq/batch_id.
 */
export interface TrainBatch__Output {
  /**
   * unique in the run, for logs ("<run_id>-b<seq>")
   */
  'batch_id': (string);
  'batch_seq': (number);
  'kind': (_recovery_v1_TrainKind__Output);
  'lease_ms': (number);
  /**
   * [N,3,H,W] policy inputs (corrupted); GRPO may send distinct_images instead
   */
  'images': (_recovery_v1_Tensor__Output | null);
  /**
   * SFT: [N,3,H,W] clean images
   */
  'targets': (_recovery_v1_Tensor__Output | null);
  /**
   * GRPO: [N,3,H,W]
   */
  'actions': (_recovery_v1_Tensor__Output | null);
  /**
   * GRPO: [N] behaviour log-probs
   */
  'logp_old': (_recovery_v1_Tensor__Output | null);
  /**
   * GRPO: [N] the advantage (scalar mode) or its scalar reward terms' part (dense)
   */
  'advantages': (_recovery_v1_Tensor__Output | null);
  /**
   * GRPO: [N] policy version that produced each action
   */
  'behaviour_versions': (number)[];
  /**
   * [N]
   */
  'sample_ids': (string)[];
  /**
   * GRPO: [N]
   */
  'group_indices': (number)[];
  /**
   * Dense advantages (grpo.advantageMode = dense): the group-centred SSIM advantage maps [N,3,H-10,W-10];
   * `advantages` [N] then holds the scalar reward terms' part and `logp_old` the per-element behaviour
   * log-density [N,3,H,W].
   */
  'advantage_map': (_recovery_v1_Tensor__Output | null);
  /**
   * model.family = flow: the rows the Flow-GRPO graph trains on; `logp_old` above is then absent.
   */
  'flow_rows': (_recovery_v1_FlowRows__Output | null);
  /**
   * grpo.identityAnchor > 0 (docs/grpo.md, "Identity member"): the identity member's advantage [N] (dense: its
   * scalar part) and, dense, its SSIM advantage map [N,3,H-10,W-10], on the first row of each group, zeros on
   * the others. Absent when the run has no identity member.
   */
  'identity_advantages': (_recovery_v1_Tensor__Output | null);
  'identity_advantage_map': (_recovery_v1_Tensor__Output | null);
  /**
   * GRPO, in place of `images`: each distinct policy input once [K,3,H,W] (a group's G rows share one image)
   * and, per row, the index of its image in it ([N], each < K). A writer sets `images` or these two, not both;
   * a reader that predates them finds `images` missing and refuses the batch naming it.
   */
  'distinct_images': (_recovery_v1_Tensor__Output | null);
  'image_rows': (number)[];
  /**
   * GRPO ([N] or empty): the rollout worker id whose accepted rollout result carried each action's group, as the
   * orchestrator attributed it. The learner trains nothing from it: where its checks exclude rows of the batch, it
   * keeps a report of the batch's checked results per worker (lib/grpo/exclusion-reports.ts) in the run state before
   * publishing the batch's version, so an orchestrator that acknowledges the batch without its TrainResult (killed
   * before writing the acknowledgement, then a catch-up or a 'duplicate') still counts them (docs/security.md). Not
   * in the batch digest (lib/transport/batch-digest.ts): an older learner drops it and must compute the same digest.
   * Empty (an older orchestrator, an SFT batch): no report.
   */
  'rollout_workers': (string)[];
  /**
   * The orchestrator's worker-id record as it stands when the batch is sent (round 33): the quarantined rollout worker
   * ids and the worker ids bound to role tokens, the run state's own (orchestrator/run-state.ts), bounded
   * (lib/transport/worker-id-record.ts). The learner trains nothing from it: it records the newest batch's in every
   * checkpoint (extra.worker_ids), so an orchestrator whose run state was lost with the NATS store takes them back
   * from the checkpoint the learner put back (docs/reliability.md). Not in the batch digest, like rollout_workers.
   * Absent: an older orchestrator.
   */
  'worker_ids': (_recovery_v1_WorkerIdRecord__Output | null);
}
