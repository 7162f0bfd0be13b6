// Original file: proto/recovery.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { OrchestratorMessage as _recovery_v1_OrchestratorMessage, OrchestratorMessage__Output as _recovery_v1_OrchestratorMessage__Output } from '../../recovery/v1/OrchestratorMessage.ts';
import type { WorkerMessage as _recovery_v1_WorkerMessage, WorkerMessage__Output as _recovery_v1_WorkerMessage__Output } from '../../recovery/v1/WorkerMessage.ts';

export interface OrchestratorClient extends grpc.Client {
  /**
   * One long-lived stream per worker process. First worker message must be Hello, first orchestrator
   * message is Welcome. Status codes: UNAUTHENTICATED (bad/missing token), INVALID_ARGUMENT (first message
   * not a valid Hello, or a message with no payload), FAILED_PRECONDITION (protocol version mismatch),
   * DEADLINE_EXCEEDED (no Hello in time, or heartbeats stopped), RESOURCE_EXHAUSTED (message too large).
   */
  Connect(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_recovery_v1_WorkerMessage, _recovery_v1_OrchestratorMessage__Output>;
  Connect(options?: grpc.CallOptions): grpc.ClientDuplexStream<_recovery_v1_WorkerMessage, _recovery_v1_OrchestratorMessage__Output>;
  /**
   * One long-lived stream per worker process. First worker message must be Hello, first orchestrator
   * message is Welcome. Status codes: UNAUTHENTICATED (bad/missing token), INVALID_ARGUMENT (first message
   * not a valid Hello, or a message with no payload), FAILED_PRECONDITION (protocol version mismatch),
   * DEADLINE_EXCEEDED (no Hello in time, or heartbeats stopped), RESOURCE_EXHAUSTED (message too large).
   */
  connect(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_recovery_v1_WorkerMessage, _recovery_v1_OrchestratorMessage__Output>;
  connect(options?: grpc.CallOptions): grpc.ClientDuplexStream<_recovery_v1_WorkerMessage, _recovery_v1_OrchestratorMessage__Output>;
  
}

export interface OrchestratorHandlers extends grpc.UntypedServiceImplementation {
  /**
   * One long-lived stream per worker process. First worker message must be Hello, first orchestrator
   * message is Welcome. Status codes: UNAUTHENTICATED (bad/missing token), INVALID_ARGUMENT (first message
   * not a valid Hello, or a message with no payload), FAILED_PRECONDITION (protocol version mismatch),
   * DEADLINE_EXCEEDED (no Hello in time, or heartbeats stopped), RESOURCE_EXHAUSTED (message too large).
   */
  Connect: grpc.handleBidiStreamingCall<_recovery_v1_WorkerMessage__Output, _recovery_v1_OrchestratorMessage>;
  
}

export interface OrchestratorDefinition extends grpc.ServiceDefinition {
  Connect: MethodDefinition<_recovery_v1_WorkerMessage, _recovery_v1_OrchestratorMessage, _recovery_v1_WorkerMessage__Output, _recovery_v1_OrchestratorMessage__Output>
}
