// Original file: proto/recovery.proto

import type { RolloutTask as _recovery_v1_RolloutTask, RolloutTask__Output as _recovery_v1_RolloutTask__Output } from '../../recovery/v1/RolloutTask.ts';
import type { ScoreTask as _recovery_v1_ScoreTask, ScoreTask__Output as _recovery_v1_ScoreTask__Output } from '../../recovery/v1/ScoreTask.ts';

/**
 * Several tasks for one worker in one message, each to be handled exactly as if it had come alone, in field
 * order. Sent only to a worker whose Hello set capabilities.max_tasks_per_message > 1, never more than that
 * many, never empty.
 */
export interface TaskBundle {
  'rollout_tasks'?: (_recovery_v1_RolloutTask)[];
  'score_tasks'?: (_recovery_v1_ScoreTask)[];
}

/**
 * Several tasks for one worker in one message, each to be handled exactly as if it had come alone, in field
 * order. Sent only to a worker whose Hello set capabilities.max_tasks_per_message > 1, never more than that
 * many, never empty.
 */
export interface TaskBundle__Output {
  'rollout_tasks': (_recovery_v1_RolloutTask__Output)[];
  'score_tasks': (_recovery_v1_ScoreTask__Output)[];
}
