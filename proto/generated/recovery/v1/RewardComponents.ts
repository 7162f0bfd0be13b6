// Original file: proto/recovery.proto


/**
 * Raw reward components. The orchestrator applies the reward expression and weights.
 */
export interface RewardComponents {
  'ssim'?: (number | string);
  'clip_cos'?: (number | string);
}

/**
 * Raw reward components. The orchestrator applies the reward expression and weights.
 */
export interface RewardComponents__Output {
  'ssim': (number);
  'clip_cos': (number);
}
