// Original file: proto/recovery.proto

import type { CheckpointRef as _recovery_v1_CheckpointRef, CheckpointRef__Output as _recovery_v1_CheckpointRef__Output } from '../../recovery/v1/CheckpointRef.ts';

export interface Welcome {
  'protocol_version'?: (number);
  'run_id'?: (string);
  /**
   * this stream, for logs
   */
  'session_id'?: (string);
  /**
   * run configuration (JSON text; the role validates what it uses)
   */
  'config_json'?: (string);
  /**
   * learner's current version; rollout workers must catch up to it
   */
  'policy_version'?: (number);
  /**
   * absent before the first checkpoint
   */
  'latest_checkpoint'?: (_recovery_v1_CheckpointRef | null);
  /**
   * 0: the worker's own default
   */
  'heartbeat_interval_ms'?: (number);
  /**
   * Most results and errors the orchestrator accepts in one ResultBundle. 0 (an orchestrator that predates
   * bundles) or 1: send each result in its own message.
   */
  'max_results_per_message'?: (number);
}

export interface Welcome__Output {
  'protocol_version': (number);
  'run_id': (string);
  /**
   * this stream, for logs
   */
  'session_id': (string);
  /**
   * run configuration (JSON text; the role validates what it uses)
   */
  'config_json': (string);
  /**
   * learner's current version; rollout workers must catch up to it
   */
  'policy_version': (number);
  /**
   * absent before the first checkpoint
   */
  'latest_checkpoint': (_recovery_v1_CheckpointRef__Output | null);
  /**
   * 0: the worker's own default
   */
  'heartbeat_interval_ms': (number);
  /**
   * Most results and errors the orchestrator accepts in one ResultBundle. 0 (an orchestrator that predates
   * bundles) or 1: send each result in its own message.
   */
  'max_results_per_message': (number);
}
