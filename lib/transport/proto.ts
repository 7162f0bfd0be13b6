// Runtime loading of proto/recovery.proto and the TypeScript names of its messages.
//
// Loader options (the generated types in proto/generated/ are made with the same ones: `npm run proto`):
// - keepCase: field names stay snake_case as in the .proto (no camelCase translation layer to get wrong).
// - longs: String. 64-bit fields (Tensor.shape, RolloutItem.noise_seed, CheckpointRef.size) arrive as decimal
//   strings. Number would silently lose precision for uint64 noise seeds above 2^53; everything that fits
//   32 bits is declared uint32 in the .proto, so it arrives as a plain number and String costs nothing there.
// - enums: String. Enum values arrive as their names ('ROLLOUT'), which read well in logs and errors.
// - defaults: true. Absent scalars read as their zero values and absent messages as null, so a decoded message
//   always has every field (proto3 `optional` fields stay absent when unset: presence is meaningful there).
// - oneofs: true. Each envelope gets a virtual `kind` property naming the member that is set.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from '../../proto/generated/recovery.ts';

export const PROTOCOL_VERSION = 1;
export const PROTO_PATH = fileURLToPath(new URL('../../proto/recovery.proto', import.meta.url));
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};
/** Default gRPC message size limit (both directions, both sides) when a caller gives none. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

let cached: ProtoGrpcType | undefined;

/** Loads (once) and returns the gRPC package object for recovery.v1. */
export function loadProtocol(): ProtoGrpcType {
  if (!cached) {
    const def = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS);
    cached = grpc.loadPackageDefinition(def) as unknown as ProtoGrpcType;
  }
  return cached;
}

export type { WorkerMessage, WorkerMessage__Output } from '../../proto/generated/recovery/v1/WorkerMessage.ts';
export type {
  OrchestratorMessage,
  OrchestratorMessage__Output,
} from '../../proto/generated/recovery/v1/OrchestratorMessage.ts';
export type { Hello, Hello__Output } from '../../proto/generated/recovery/v1/Hello.ts';
export type { Capabilities, Capabilities__Output } from '../../proto/generated/recovery/v1/Capabilities.ts';
export type { Heartbeat, Heartbeat__Output } from '../../proto/generated/recovery/v1/Heartbeat.ts';
export type { Welcome, Welcome__Output } from '../../proto/generated/recovery/v1/Welcome.ts';
export type { Tensor, Tensor__Output } from '../../proto/generated/recovery/v1/Tensor.ts';
export type { RolloutTask, RolloutTask__Output } from '../../proto/generated/recovery/v1/RolloutTask.ts';
export type { RolloutItem, RolloutItem__Output } from '../../proto/generated/recovery/v1/RolloutItem.ts';
export type { RolloutResult, RolloutResult__Output } from '../../proto/generated/recovery/v1/RolloutResult.ts';
export type { RolloutAction, RolloutAction__Output } from '../../proto/generated/recovery/v1/RolloutAction.ts';
export type { ScoreTask, ScoreTask__Output } from '../../proto/generated/recovery/v1/ScoreTask.ts';
export type { ScoreResult, ScoreResult__Output } from '../../proto/generated/recovery/v1/ScoreResult.ts';
export type {
  RewardComponents,
  RewardComponents__Output,
} from '../../proto/generated/recovery/v1/RewardComponents.ts';
export type { TrainBatch, TrainBatch__Output } from '../../proto/generated/recovery/v1/TrainBatch.ts';
export type { FlowStep, FlowStep__Output } from '../../proto/generated/recovery/v1/FlowStep.ts';
export type { FlowRows, FlowRows__Output } from '../../proto/generated/recovery/v1/FlowRows.ts';
export type { TrainResult, TrainResult__Output } from '../../proto/generated/recovery/v1/TrainResult.ts';
export type { FlowStepMetrics, FlowStepMetrics__Output } from '../../proto/generated/recovery/v1/FlowStepMetrics.ts';
export type { TaskError, TaskError__Output } from '../../proto/generated/recovery/v1/TaskError.ts';
export type { TaskBundle, TaskBundle__Output } from '../../proto/generated/recovery/v1/TaskBundle.ts';
export type { ResultBundle, ResultBundle__Output } from '../../proto/generated/recovery/v1/ResultBundle.ts';
export type { CancelTask, CancelTask__Output } from '../../proto/generated/recovery/v1/CancelTask.ts';
export type { Shutdown, Shutdown__Output } from '../../proto/generated/recovery/v1/Shutdown.ts';
export type { CheckpointRef, CheckpointRef__Output } from '../../proto/generated/recovery/v1/CheckpointRef.ts';
export type { Role, Role__Output } from '../../proto/generated/recovery/v1/Role.ts';
export type { TrainKind, TrainKind__Output } from '../../proto/generated/recovery/v1/TrainKind.ts';
export type { WorkerIdRecord, WorkerIdRecord__Output } from '../../proto/generated/recovery/v1/WorkerIdRecord.ts';

/** Worker roles as they appear on the wire (enum names). */
export const ROLES = ['ROLLOUT', 'REWARD', 'LEARNER'] as const;
export type WorkerRole = (typeof ROLES)[number];
export type WorkerMessageKind = NonNullable<import('../../proto/generated/recovery/v1/WorkerMessage.ts').WorkerMessage['kind']>;
export type OrchestratorMessageKind = NonNullable<
  import('../../proto/generated/recovery/v1/OrchestratorMessage.ts').OrchestratorMessage['kind']
>;
