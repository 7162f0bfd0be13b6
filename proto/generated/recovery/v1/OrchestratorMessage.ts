// Original file: proto/recovery.proto

import type { Welcome as _recovery_v1_Welcome, Welcome__Output as _recovery_v1_Welcome__Output } from '../../recovery/v1/Welcome.ts';
import type { RolloutTask as _recovery_v1_RolloutTask, RolloutTask__Output as _recovery_v1_RolloutTask__Output } from '../../recovery/v1/RolloutTask.ts';
import type { ScoreTask as _recovery_v1_ScoreTask, ScoreTask__Output as _recovery_v1_ScoreTask__Output } from '../../recovery/v1/ScoreTask.ts';
import type { TrainBatch as _recovery_v1_TrainBatch, TrainBatch__Output as _recovery_v1_TrainBatch__Output } from '../../recovery/v1/TrainBatch.ts';
import type { CancelTask as _recovery_v1_CancelTask, CancelTask__Output as _recovery_v1_CancelTask__Output } from '../../recovery/v1/CancelTask.ts';
import type { Shutdown as _recovery_v1_Shutdown, Shutdown__Output as _recovery_v1_Shutdown__Output } from '../../recovery/v1/Shutdown.ts';
import type { TaskBundle as _recovery_v1_TaskBundle, TaskBundle__Output as _recovery_v1_TaskBundle__Output } from '../../recovery/v1/TaskBundle.ts';

export interface OrchestratorMessage {
  'welcome'?: (_recovery_v1_Welcome | null);
  'rollout_task'?: (_recovery_v1_RolloutTask | null);
  'score_task'?: (_recovery_v1_ScoreTask | null);
  'train_batch'?: (_recovery_v1_TrainBatch | null);
  'cancel_task'?: (_recovery_v1_CancelTask | null);
  'shutdown'?: (_recovery_v1_Shutdown | null);
  /**
   * several tasks in one message (Capabilities.max_tasks_per_message > 1)
   */
  'task_bundle'?: (_recovery_v1_TaskBundle | null);
  'kind'?: "welcome"|"rollout_task"|"score_task"|"train_batch"|"cancel_task"|"shutdown"|"task_bundle";
}

export interface OrchestratorMessage__Output {
  'welcome'?: (_recovery_v1_Welcome__Output | null);
  'rollout_task'?: (_recovery_v1_RolloutTask__Output | null);
  'score_task'?: (_recovery_v1_ScoreTask__Output | null);
  'train_batch'?: (_recovery_v1_TrainBatch__Output | null);
  'cancel_task'?: (_recovery_v1_CancelTask__Output | null);
  'shutdown'?: (_recovery_v1_Shutdown__Output | null);
  /**
   * several tasks in one message (Capabilities.max_tasks_per_message > 1)
   */
  'task_bundle'?: (_recovery_v1_TaskBundle__Output | null);
  'kind'?: "welcome"|"rollout_task"|"score_task"|"train_batch"|"cancel_task"|"shutdown"|"task_bundle";
}
