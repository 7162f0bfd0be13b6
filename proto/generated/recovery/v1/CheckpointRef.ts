// Original file: proto/recovery.proto

import type { Long } from '@grpc/proto-loader';

/**
 * A checkpoint in the NATS JetStream object store (lib/transport/nats.ts, CheckpointStore).
 */
export interface CheckpointRef {
  'version'?: (number);
  /**
   * object name in bucket checkpoints-<run_id>
   */
  'name'?: (string);
  /**
   * "sha256:<64 hex>"
   */
  'digest'?: (string);
  /**
   * bytes
   */
  'size'?: (number | string | Long);
}

/**
 * A checkpoint in the NATS JetStream object store (lib/transport/nats.ts, CheckpointStore).
 */
export interface CheckpointRef__Output {
  'version': (number);
  /**
   * object name in bucket checkpoints-<run_id>
   */
  'name': (string);
  /**
   * "sha256:<64 hex>"
   */
  'digest': (string);
  /**
   * bytes
   */
  'size': (string);
}
