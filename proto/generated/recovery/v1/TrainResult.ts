// Original file: proto/recovery.proto

import type { CheckpointRef as _recovery_v1_CheckpointRef, CheckpointRef__Output as _recovery_v1_CheckpointRef__Output } from '../../recovery/v1/CheckpointRef.ts';
import type { FlowStepMetrics as _recovery_v1_FlowStepMetrics, FlowStepMetrics__Output as _recovery_v1_FlowStepMetrics__Output } from '../../recovery/v1/FlowStepMetrics.ts';
import type { CheckCoverage as _recovery_v1_CheckCoverage, CheckCoverage__Output as _recovery_v1_CheckCoverage__Output } from '../../recovery/v1/CheckCoverage.ts';

export interface TrainResult {
  'batch_id'?: (string);
  'batch_seq'?: (number);
  /**
   * false: nothing changed (see skipped_reason); version is unchanged
   */
  'applied'?: (boolean);
  /**
   * "" when applied; "duplicate" (already in the checkpoint), "non_finite", ...
   */
  'skipped_reason'?: (string);
  /**
   * learner policy version after handling this batch
   */
  'version'?: (number);
  'loss'?: (number | string);
  'kl'?: (number | string);
  'clip_fraction'?: (number | string);
  /**
   * before clipping
   */
  'grad_norm'?: (number | string);
  /**
   * mean |logp_learner - logp_old| over samples with behaviour_version == version before the step
   */
  'logp_mismatch'?: (number | string);
  'ratio_mean'?: (number | string);
  'compute_ms'?: (number | string);
  /**
   * set when `version` was published to the checkpoint store
   */
  'checkpoint'?: (_recovery_v1_CheckpointRef | null);
  /**
   * flow family, GRPO: one per trained step index, in step order
   */
  'flow_steps'?: (_recovery_v1_FlowStepMetrics)[];
  /**
   * GRPO: the batch's actions (indices into train_batch.sample_ids, ascending, each once) whose rows the learner's
   * same-version check excluded from the step (docs/grpo.md): their logp_old disagreed with the learner's own at its
   * version. The orchestrator names and counts the rollout worker of each (docs/security.md). Absent (an older
   * learner): none.
   */
  'excluded_actions'?: (number)[];
  /**
   * "sha256:<64 hex>" of the content of the batch this result answers (lib/transport/batch-digest.ts: a canonical
   * form of every TrainBatch field but lease_ms, not the wire bytes). The orchestrator takes the result as the
   * acknowledgement of the batch it holds under batch_seq, and attributes excluded_actions to that batch's rollout
   * workers, only when it matches that batch's digest: after an orchestrator restart the batch under a seq is rebuilt
   * with other rollouts, and a result of the old process's batch must not be taken for it (docs/reliability.md).
   * Empty (an older learner): matched by batch_seq alone, as before.
   */
  'batch_digest'?: (string);
  /**
   * GRPO, applied: which of the batch's actions the learner's checks examined, for the quarantine window
   * (grpo.quarantineWindow, docs/security.md): a group with no unchecked action counts as a checked result of its
   * rollout worker, passed or excluded. Absent (an older learner): the orchestrator counts a group only when a row of it
   * is at the learner's version or excluded, as before.
   */
  'check_coverage'?: (_recovery_v1_CheckCoverage | null);
}

export interface TrainResult__Output {
  'batch_id': (string);
  'batch_seq': (number);
  /**
   * false: nothing changed (see skipped_reason); version is unchanged
   */
  'applied': (boolean);
  /**
   * "" when applied; "duplicate" (already in the checkpoint), "non_finite", ...
   */
  'skipped_reason': (string);
  /**
   * learner policy version after handling this batch
   */
  'version': (number);
  'loss': (number);
  'kl': (number);
  'clip_fraction': (number);
  /**
   * before clipping
   */
  'grad_norm': (number);
  /**
   * mean |logp_learner - logp_old| over samples with behaviour_version == version before the step
   */
  'logp_mismatch': (number);
  'ratio_mean': (number);
  'compute_ms': (number);
  /**
   * set when `version` was published to the checkpoint store
   */
  'checkpoint': (_recovery_v1_CheckpointRef__Output | null);
  /**
   * flow family, GRPO: one per trained step index, in step order
   */
  'flow_steps': (_recovery_v1_FlowStepMetrics__Output)[];
  /**
   * GRPO: the batch's actions (indices into train_batch.sample_ids, ascending, each once) whose rows the learner's
   * same-version check excluded from the step (docs/grpo.md): their logp_old disagreed with the learner's own at its
   * version. The orchestrator names and counts the rollout worker of each (docs/security.md). Absent (an older
   * learner): none.
   */
  'excluded_actions': (number)[];
  /**
   * "sha256:<64 hex>" of the content of the batch this result answers (lib/transport/batch-digest.ts: a canonical
   * form of every TrainBatch field but lease_ms, not the wire bytes). The orchestrator takes the result as the
   * acknowledgement of the batch it holds under batch_seq, and attributes excluded_actions to that batch's rollout
   * workers, only when it matches that batch's digest: after an orchestrator restart the batch under a seq is rebuilt
   * with other rollouts, and a result of the old process's batch must not be taken for it (docs/reliability.md).
   * Empty (an older learner): matched by batch_seq alone, as before.
   */
  'batch_digest': (string);
  /**
   * GRPO, applied: which of the batch's actions the learner's checks examined, for the quarantine window
   * (grpo.quarantineWindow, docs/security.md): a group with no unchecked action counts as a checked result of its
   * rollout worker, passed or excluded. Absent (an older learner): the orchestrator counts a group only when a row of it
   * is at the learner's version or excluded, as before.
   */
  'check_coverage': (_recovery_v1_CheckCoverage__Output | null);
}
