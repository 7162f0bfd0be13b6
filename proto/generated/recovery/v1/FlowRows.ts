// Original file: proto/recovery.proto

import type { Tensor as _recovery_v1_Tensor, Tensor__Output as _recovery_v1_Tensor__Output } from '../../recovery/v1/Tensor.ts';

/**
 * A flow GRPO batch's training rows, one per (action, trained step), action-major; the batch's images,
 * advantages and advantage maps stay per action and `action_index` points each row at its action.
 */
export interface FlowRows {
  /**
   * [R]
   */
  'action_index'?: (number)[];
  /**
   * [R]
   */
  'step_index'?: (number)[];
  /**
   * [R]
   */
  't'?: (_recovery_v1_Tensor | null);
  /**
   * [R]
   */
  't_next'?: (_recovery_v1_Tensor | null);
  /**
   * [R]
   */
  'a'?: (_recovery_v1_Tensor | null);
  /**
   * [R,3,H,W]
   */
  'x'?: (_recovery_v1_Tensor | null);
  /**
   * [R,3,H,W]
   */
  'x_next'?: (_recovery_v1_Tensor | null);
  /**
   * [R] or, dense, [R,3,H,W]
   */
  'logp_old'?: (_recovery_v1_Tensor | null);
}

/**
 * A flow GRPO batch's training rows, one per (action, trained step), action-major; the batch's images,
 * advantages and advantage maps stay per action and `action_index` points each row at its action.
 */
export interface FlowRows__Output {
  /**
   * [R]
   */
  'action_index': (number)[];
  /**
   * [R]
   */
  'step_index': (number)[];
  /**
   * [R]
   */
  't': (_recovery_v1_Tensor__Output | null);
  /**
   * [R]
   */
  't_next': (_recovery_v1_Tensor__Output | null);
  /**
   * [R]
   */
  'a': (_recovery_v1_Tensor__Output | null);
  /**
   * [R,3,H,W]
   */
  'x': (_recovery_v1_Tensor__Output | null);
  /**
   * [R,3,H,W]
   */
  'x_next': (_recovery_v1_Tensor__Output | null);
  /**
   * [R] or, dense, [R,3,H,W]
   */
  'logp_old': (_recovery_v1_Tensor__Output | null);
}
