// Original file: proto/recovery.proto

import type { RewardComponents as _recovery_v1_RewardComponents, RewardComponents__Output as _recovery_v1_RewardComponents__Output } from '../../recovery/v1/RewardComponents.ts';
import type { Tensor as _recovery_v1_Tensor, Tensor__Output as _recovery_v1_Tensor__Output } from '../../recovery/v1/Tensor.ts';

export interface ScoreResult {
  'task_id'?: (string);
  'attempt'?: (number);
  /**
   * one per candidate, same order
   */
  'components'?: (_recovery_v1_RewardComponents)[];
  /**
   * [N,3,H-10,W-10] per-window SSIM, only if want_ssim_map (float32; float16 decodes, at a 2-10% cost in the dense advantages)
   */
  'ssim_map'?: (_recovery_v1_Tensor | null);
  'compute_ms'?: (number | string);
  /**
   * which image encoder produced clip_cos (model name or "toy:<hash>")
   */
  'clip_encoder'?: (string);
}

export interface ScoreResult__Output {
  'task_id': (string);
  'attempt': (number);
  /**
   * one per candidate, same order
   */
  'components': (_recovery_v1_RewardComponents__Output)[];
  /**
   * [N,3,H-10,W-10] per-window SSIM, only if want_ssim_map (float32; float16 decodes, at a 2-10% cost in the dense advantages)
   */
  'ssim_map': (_recovery_v1_Tensor__Output | null);
  'compute_ms': (number);
  /**
   * which image encoder produced clip_cos (model name or "toy:<hash>")
   */
  'clip_encoder': (string);
}
