// Original file: proto/recovery.proto

import type { WorkerIdBinding as _recovery_v1_WorkerIdBinding, WorkerIdBinding__Output as _recovery_v1_WorkerIdBinding__Output } from '../../recovery/v1/WorkerIdBinding.ts';

/**
 * The quarantined rollout worker ids and the worker-id bindings an orchestrator sends with each TrainBatch. Repeated
 * fields, not a map: the direct codec (lib/transport/wire-codec.ts) handles no message with a map below it.
 */
export interface WorkerIdRecord {
  /**
   * rollout worker ids
   */
  'quarantined'?: (string)[];
  /**
   * least recently claimed first
   */
  'bound'?: (_recovery_v1_WorkerIdBinding)[];
}

/**
 * The quarantined rollout worker ids and the worker-id bindings an orchestrator sends with each TrainBatch. Repeated
 * fields, not a map: the direct codec (lib/transport/wire-codec.ts) handles no message with a map below it.
 */
export interface WorkerIdRecord__Output {
  /**
   * rollout worker ids
   */
  'quarantined': (string)[];
  /**
   * least recently claimed first
   */
  'bound': (_recovery_v1_WorkerIdBinding__Output)[];
}
