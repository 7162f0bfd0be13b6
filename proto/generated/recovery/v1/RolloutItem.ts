// Original file: proto/recovery.proto

import type { Tensor as _recovery_v1_Tensor, Tensor__Output as _recovery_v1_Tensor__Output } from '../../recovery/v1/Tensor.ts';
import type { Long } from '@grpc/proto-loader';

/**
 * noise = N(0,1) derived from noise_seed (itself derived from run seed, sample id, group index),
 * so a re-run of the task reproduces the same actions.
 */
export interface RolloutItem {
  'sample_id'?: (string);
  'group_index'?: (number);
  'noise_seed'?: (number | string | Long);
  /**
   * [3,H,W] corrupted input in [0,1]. Items of one sample share an image: it is required on the first item of
   * each sample_id and may be omitted on later items of the same sample_id (see resolveRolloutItems).
   */
  'image'?: (_recovery_v1_Tensor | null);
}

/**
 * noise = N(0,1) derived from noise_seed (itself derived from run seed, sample id, group index),
 * so a re-run of the task reproduces the same actions.
 */
export interface RolloutItem__Output {
  'sample_id': (string);
  'group_index': (number);
  'noise_seed': (string);
  /**
   * [3,H,W] corrupted input in [0,1]. Items of one sample share an image: it is required on the first item of
   * each sample_id and may be omitted on later items of the same sample_id (see resolveRolloutItems).
   */
  'image': (_recovery_v1_Tensor__Output | null);
}
