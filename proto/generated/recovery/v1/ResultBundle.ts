// Original file: proto/recovery.proto

import type { RolloutResult as _recovery_v1_RolloutResult, RolloutResult__Output as _recovery_v1_RolloutResult__Output } from '../../recovery/v1/RolloutResult.ts';
import type { ScoreResult as _recovery_v1_ScoreResult, ScoreResult__Output as _recovery_v1_ScoreResult__Output } from '../../recovery/v1/ScoreResult.ts';
import type { TaskError as _recovery_v1_TaskError, TaskError__Output as _recovery_v1_TaskError__Output } from '../../recovery/v1/TaskError.ts';

/**
 * Several results and task errors in one message, each handled exactly as if it had come alone (holder check,
 * validation, first result wins), in field order. Only to an orchestrator whose Welcome set
 * max_results_per_message > 1, at most that many in all; an empty bundle or a larger one ends the stream
 * (INVALID_ARGUMENT).
 */
export interface ResultBundle {
  'rollout_results'?: (_recovery_v1_RolloutResult)[];
  'score_results'?: (_recovery_v1_ScoreResult)[];
  'task_errors'?: (_recovery_v1_TaskError)[];
}

/**
 * Several results and task errors in one message, each handled exactly as if it had come alone (holder check,
 * validation, first result wins), in field order. Only to an orchestrator whose Welcome set
 * max_results_per_message > 1, at most that many in all; an empty bundle or a larger one ends the stream
 * (INVALID_ARGUMENT).
 */
export interface ResultBundle__Output {
  'rollout_results': (_recovery_v1_RolloutResult__Output)[];
  'score_results': (_recovery_v1_ScoreResult__Output)[];
  'task_errors': (_recovery_v1_TaskError__Output)[];
}
