// Original file: proto/recovery.proto

import type { RolloutAction as _recovery_v1_RolloutAction, RolloutAction__Output as _recovery_v1_RolloutAction__Output } from '../../recovery/v1/RolloutAction.ts';

/**
 * One RolloutTask's actions, all produced by one policy version (the behaviour version).
 */
export interface RolloutResult {
  'task_id'?: (string);
  'attempt'?: (number);
  'policy_version'?: (number);
  /**
   * one per RolloutTask item, same order
   */
  'items'?: (_recovery_v1_RolloutAction)[];
  'compute_ms'?: (number | string);
}

/**
 * One RolloutTask's actions, all produced by one policy version (the behaviour version).
 */
export interface RolloutResult__Output {
  'task_id': (string);
  'attempt': (number);
  'policy_version': (number);
  /**
   * one per RolloutTask item, same order
   */
  'items': (_recovery_v1_RolloutAction__Output)[];
  'compute_ms': (number);
}
