// Original file: proto/recovery.proto

import type { RolloutItem as _recovery_v1_RolloutItem, RolloutItem__Output as _recovery_v1_RolloutItem__Output } from '../../recovery/v1/RolloutItem.ts';

export interface RolloutTask {
  'task_id'?: (string);
  /**
   * 1 on first dispatch, +1 per re-dispatch
   */
  'attempt'?: (number);
  'lease_ms'?: (number);
  /**
   * do not run on an older policy: fetch the checkpoint first
   */
  'policy_version_min'?: (number);
  'items'?: (_recovery_v1_RolloutItem)[];
  /**
   * dense advantages: return each action's per-element log-density
   */
  'want_logp_map'?: (boolean);
  '_policy_version_min'?: "policy_version_min";
}

export interface RolloutTask__Output {
  'task_id': (string);
  /**
   * 1 on first dispatch, +1 per re-dispatch
   */
  'attempt': (number);
  'lease_ms': (number);
  /**
   * do not run on an older policy: fetch the checkpoint first
   */
  'policy_version_min'?: (number);
  'items': (_recovery_v1_RolloutItem__Output)[];
  /**
   * dense advantages: return each action's per-element log-density
   */
  'want_logp_map': (boolean);
  '_policy_version_min'?: "policy_version_min";
}
