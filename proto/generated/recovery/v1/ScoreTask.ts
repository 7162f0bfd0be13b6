// Original file: proto/recovery.proto

import type { Tensor as _recovery_v1_Tensor, Tensor__Output as _recovery_v1_Tensor__Output } from '../../recovery/v1/Tensor.ts';

export interface ScoreTask {
  'task_id'?: (string);
  'attempt'?: (number);
  'lease_ms'?: (number);
  /**
   * [N,3,H,W] in [0,1]
   */
  'candidates'?: (_recovery_v1_Tensor | null);
  /**
   * [N,3,H,W], or [1,3,H,W]: the same clean image for every candidate
   */
  'references'?: (_recovery_v1_Tensor | null);
  'want_ssim_map'?: (boolean);
}

export interface ScoreTask__Output {
  'task_id': (string);
  'attempt': (number);
  'lease_ms': (number);
  /**
   * [N,3,H,W] in [0,1]
   */
  'candidates': (_recovery_v1_Tensor__Output | null);
  /**
   * [N,3,H,W], or [1,3,H,W]: the same clean image for every candidate
   */
  'references': (_recovery_v1_Tensor__Output | null);
  'want_ssim_map': (boolean);
}
