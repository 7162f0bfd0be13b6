// Original file: proto/recovery.proto

import type { Tensor as _recovery_v1_Tensor, Tensor__Output as _recovery_v1_Tensor__Output } from '../../recovery/v1/Tensor.ts';

/**
 * One trained step of a flow trajectory (flow space, x = 2 image - 1). float32 only: the learner must
 * reproduce logp within 1e-6, and (x_after - mean)^2 / std^2 magnifies any rounding of x_after.
 */
export interface FlowStep {
  /**
   * the step's index in the T-step plan
   */
  'index'?: (number);
  't'?: (number | string);
  't_next'?: (number | string);
  /**
   * the SDE noise level of the step
   */
  'a'?: (number | string);
  /**
   * [3,H,W]
   */
  'x_before'?: (_recovery_v1_Tensor | null);
  /**
   * [3,H,W]
   */
  'x_after'?: (_recovery_v1_Tensor | null);
  /**
   * log-density of x_after, averaged over C, H, W
   */
  'logp'?: (number | string);
  /**
   * [3,H,W] per-element log-density; only if RolloutTask.want_logp_map
   */
  'logp_map'?: (_recovery_v1_Tensor | null);
}

/**
 * One trained step of a flow trajectory (flow space, x = 2 image - 1). float32 only: the learner must
 * reproduce logp within 1e-6, and (x_after - mean)^2 / std^2 magnifies any rounding of x_after.
 */
export interface FlowStep__Output {
  /**
   * the step's index in the T-step plan
   */
  'index': (number);
  't': (number);
  't_next': (number);
  /**
   * the SDE noise level of the step
   */
  'a': (number);
  /**
   * [3,H,W]
   */
  'x_before': (_recovery_v1_Tensor__Output | null);
  /**
   * [3,H,W]
   */
  'x_after': (_recovery_v1_Tensor__Output | null);
  /**
   * log-density of x_after, averaged over C, H, W
   */
  'logp': (number);
  /**
   * [3,H,W] per-element log-density; only if RolloutTask.want_logp_map
   */
  'logp_map': (_recovery_v1_Tensor__Output | null);
}
