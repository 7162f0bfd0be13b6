// Original file: proto/recovery.proto

import type { Role as _recovery_v1_Role, Role__Output as _recovery_v1_Role__Output } from '../../recovery/v1/Role.ts';
import type { Capabilities as _recovery_v1_Capabilities, Capabilities__Output as _recovery_v1_Capabilities__Output } from '../../recovery/v1/Capabilities.ts';

export interface Hello {
  /**
   * must equal the server's (1)
   */
  'protocol_version'?: (number);
  'role'?: (_recovery_v1_Role);
  /**
   * stable per process: [A-Za-z0-9._:-]{1,128}; a reconnect reuses it
   */
  'worker_id'?: (string);
  'capabilities'?: (_recovery_v1_Capabilities | null);
  /**
   * version loaded now (rollout worker, learner); absent: none loaded
   */
  'policy_version'?: (number);
  /**
   * learner: batch_seq of the last TrainBatch its latest checkpoint contains
   */
  'last_batch_seq'?: (number);
  'software_version'?: (string);
  '_policy_version'?: "policy_version";
  '_last_batch_seq'?: "last_batch_seq";
}

export interface Hello__Output {
  /**
   * must equal the server's (1)
   */
  'protocol_version': (number);
  'role': (_recovery_v1_Role__Output);
  /**
   * stable per process: [A-Za-z0-9._:-]{1,128}; a reconnect reuses it
   */
  'worker_id': (string);
  'capabilities': (_recovery_v1_Capabilities__Output | null);
  /**
   * version loaded now (rollout worker, learner); absent: none loaded
   */
  'policy_version'?: (number);
  /**
   * learner: batch_seq of the last TrainBatch its latest checkpoint contains
   */
  'last_batch_seq'?: (number);
  'software_version': (string);
  '_policy_version'?: "policy_version";
  '_last_batch_seq'?: "last_batch_seq";
}
