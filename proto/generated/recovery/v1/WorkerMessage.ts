// Original file: proto/recovery.proto

import type { Hello as _recovery_v1_Hello, Hello__Output as _recovery_v1_Hello__Output } from '../../recovery/v1/Hello.ts';
import type { Heartbeat as _recovery_v1_Heartbeat, Heartbeat__Output as _recovery_v1_Heartbeat__Output } from '../../recovery/v1/Heartbeat.ts';
import type { RolloutResult as _recovery_v1_RolloutResult, RolloutResult__Output as _recovery_v1_RolloutResult__Output } from '../../recovery/v1/RolloutResult.ts';
import type { ScoreResult as _recovery_v1_ScoreResult, ScoreResult__Output as _recovery_v1_ScoreResult__Output } from '../../recovery/v1/ScoreResult.ts';
import type { TrainResult as _recovery_v1_TrainResult, TrainResult__Output as _recovery_v1_TrainResult__Output } from '../../recovery/v1/TrainResult.ts';
import type { TaskError as _recovery_v1_TaskError, TaskError__Output as _recovery_v1_TaskError__Output } from '../../recovery/v1/TaskError.ts';
import type { ResultBundle as _recovery_v1_ResultBundle, ResultBundle__Output as _recovery_v1_ResultBundle__Output } from '../../recovery/v1/ResultBundle.ts';

export interface WorkerMessage {
  'hello'?: (_recovery_v1_Hello | null);
  'heartbeat'?: (_recovery_v1_Heartbeat | null);
  'rollout_result'?: (_recovery_v1_RolloutResult | null);
  'score_result'?: (_recovery_v1_ScoreResult | null);
  'train_result'?: (_recovery_v1_TrainResult | null);
  'task_error'?: (_recovery_v1_TaskError | null);
  /**
   * several results/errors in one message (Welcome.max_results_per_message > 1)
   */
  'result_bundle'?: (_recovery_v1_ResultBundle | null);
  'kind'?: "hello"|"heartbeat"|"rollout_result"|"score_result"|"train_result"|"task_error"|"result_bundle";
}

export interface WorkerMessage__Output {
  'hello'?: (_recovery_v1_Hello__Output | null);
  'heartbeat'?: (_recovery_v1_Heartbeat__Output | null);
  'rollout_result'?: (_recovery_v1_RolloutResult__Output | null);
  'score_result'?: (_recovery_v1_ScoreResult__Output | null);
  'train_result'?: (_recovery_v1_TrainResult__Output | null);
  'task_error'?: (_recovery_v1_TaskError__Output | null);
  /**
   * several results/errors in one message (Welcome.max_results_per_message > 1)
   */
  'result_bundle'?: (_recovery_v1_ResultBundle__Output | null);
  'kind'?: "hello"|"heartbeat"|"rollout_result"|"score_result"|"train_result"|"task_error"|"result_bundle";
}
