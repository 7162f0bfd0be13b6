import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { CancelTask as _recovery_v1_CancelTask, CancelTask__Output as _recovery_v1_CancelTask__Output } from './recovery/v1/CancelTask.ts';
import type { Capabilities as _recovery_v1_Capabilities, Capabilities__Output as _recovery_v1_Capabilities__Output } from './recovery/v1/Capabilities.ts';
import type { CheckCoverage as _recovery_v1_CheckCoverage, CheckCoverage__Output as _recovery_v1_CheckCoverage__Output } from './recovery/v1/CheckCoverage.ts';
import type { CheckpointRef as _recovery_v1_CheckpointRef, CheckpointRef__Output as _recovery_v1_CheckpointRef__Output } from './recovery/v1/CheckpointRef.ts';
import type { FlowRows as _recovery_v1_FlowRows, FlowRows__Output as _recovery_v1_FlowRows__Output } from './recovery/v1/FlowRows.ts';
import type { FlowStep as _recovery_v1_FlowStep, FlowStep__Output as _recovery_v1_FlowStep__Output } from './recovery/v1/FlowStep.ts';
import type { FlowStepMetrics as _recovery_v1_FlowStepMetrics, FlowStepMetrics__Output as _recovery_v1_FlowStepMetrics__Output } from './recovery/v1/FlowStepMetrics.ts';
import type { Heartbeat as _recovery_v1_Heartbeat, Heartbeat__Output as _recovery_v1_Heartbeat__Output } from './recovery/v1/Heartbeat.ts';
import type { Hello as _recovery_v1_Hello, Hello__Output as _recovery_v1_Hello__Output } from './recovery/v1/Hello.ts';
import type { OrchestratorClient as _recovery_v1_OrchestratorClient, OrchestratorDefinition as _recovery_v1_OrchestratorDefinition } from './recovery/v1/Orchestrator.ts';
import type { OrchestratorMessage as _recovery_v1_OrchestratorMessage, OrchestratorMessage__Output as _recovery_v1_OrchestratorMessage__Output } from './recovery/v1/OrchestratorMessage.ts';
import type { ResultBundle as _recovery_v1_ResultBundle, ResultBundle__Output as _recovery_v1_ResultBundle__Output } from './recovery/v1/ResultBundle.ts';
import type { RewardComponents as _recovery_v1_RewardComponents, RewardComponents__Output as _recovery_v1_RewardComponents__Output } from './recovery/v1/RewardComponents.ts';
import type { RolloutAction as _recovery_v1_RolloutAction, RolloutAction__Output as _recovery_v1_RolloutAction__Output } from './recovery/v1/RolloutAction.ts';
import type { RolloutItem as _recovery_v1_RolloutItem, RolloutItem__Output as _recovery_v1_RolloutItem__Output } from './recovery/v1/RolloutItem.ts';
import type { RolloutResult as _recovery_v1_RolloutResult, RolloutResult__Output as _recovery_v1_RolloutResult__Output } from './recovery/v1/RolloutResult.ts';
import type { RolloutTask as _recovery_v1_RolloutTask, RolloutTask__Output as _recovery_v1_RolloutTask__Output } from './recovery/v1/RolloutTask.ts';
import type { ScoreResult as _recovery_v1_ScoreResult, ScoreResult__Output as _recovery_v1_ScoreResult__Output } from './recovery/v1/ScoreResult.ts';
import type { ScoreTask as _recovery_v1_ScoreTask, ScoreTask__Output as _recovery_v1_ScoreTask__Output } from './recovery/v1/ScoreTask.ts';
import type { Shutdown as _recovery_v1_Shutdown, Shutdown__Output as _recovery_v1_Shutdown__Output } from './recovery/v1/Shutdown.ts';
import type { TaskBundle as _recovery_v1_TaskBundle, TaskBundle__Output as _recovery_v1_TaskBundle__Output } from './recovery/v1/TaskBundle.ts';
import type { TaskError as _recovery_v1_TaskError, TaskError__Output as _recovery_v1_TaskError__Output } from './recovery/v1/TaskError.ts';
import type { Tensor as _recovery_v1_Tensor, Tensor__Output as _recovery_v1_Tensor__Output } from './recovery/v1/Tensor.ts';
import type { TrainBatch as _recovery_v1_TrainBatch, TrainBatch__Output as _recovery_v1_TrainBatch__Output } from './recovery/v1/TrainBatch.ts';
import type { TrainResult as _recovery_v1_TrainResult, TrainResult__Output as _recovery_v1_TrainResult__Output } from './recovery/v1/TrainResult.ts';
import type { Welcome as _recovery_v1_Welcome, Welcome__Output as _recovery_v1_Welcome__Output } from './recovery/v1/Welcome.ts';
import type { WorkerIdBinding as _recovery_v1_WorkerIdBinding, WorkerIdBinding__Output as _recovery_v1_WorkerIdBinding__Output } from './recovery/v1/WorkerIdBinding.ts';
import type { WorkerIdRecord as _recovery_v1_WorkerIdRecord, WorkerIdRecord__Output as _recovery_v1_WorkerIdRecord__Output } from './recovery/v1/WorkerIdRecord.ts';
import type { WorkerMessage as _recovery_v1_WorkerMessage, WorkerMessage__Output as _recovery_v1_WorkerMessage__Output } from './recovery/v1/WorkerMessage.ts';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  recovery: {
    v1: {
      CancelTask: MessageTypeDefinition<_recovery_v1_CancelTask, _recovery_v1_CancelTask__Output>
      Capabilities: MessageTypeDefinition<_recovery_v1_Capabilities, _recovery_v1_Capabilities__Output>
      CheckCoverage: MessageTypeDefinition<_recovery_v1_CheckCoverage, _recovery_v1_CheckCoverage__Output>
      CheckpointRef: MessageTypeDefinition<_recovery_v1_CheckpointRef, _recovery_v1_CheckpointRef__Output>
      FlowRows: MessageTypeDefinition<_recovery_v1_FlowRows, _recovery_v1_FlowRows__Output>
      FlowStep: MessageTypeDefinition<_recovery_v1_FlowStep, _recovery_v1_FlowStep__Output>
      FlowStepMetrics: MessageTypeDefinition<_recovery_v1_FlowStepMetrics, _recovery_v1_FlowStepMetrics__Output>
      Heartbeat: MessageTypeDefinition<_recovery_v1_Heartbeat, _recovery_v1_Heartbeat__Output>
      Hello: MessageTypeDefinition<_recovery_v1_Hello, _recovery_v1_Hello__Output>
      Orchestrator: SubtypeConstructor<typeof grpc.Client, _recovery_v1_OrchestratorClient> & { service: _recovery_v1_OrchestratorDefinition }
      OrchestratorMessage: MessageTypeDefinition<_recovery_v1_OrchestratorMessage, _recovery_v1_OrchestratorMessage__Output>
      ResultBundle: MessageTypeDefinition<_recovery_v1_ResultBundle, _recovery_v1_ResultBundle__Output>
      RewardComponents: MessageTypeDefinition<_recovery_v1_RewardComponents, _recovery_v1_RewardComponents__Output>
      Role: EnumTypeDefinition
      RolloutAction: MessageTypeDefinition<_recovery_v1_RolloutAction, _recovery_v1_RolloutAction__Output>
      RolloutItem: MessageTypeDefinition<_recovery_v1_RolloutItem, _recovery_v1_RolloutItem__Output>
      RolloutResult: MessageTypeDefinition<_recovery_v1_RolloutResult, _recovery_v1_RolloutResult__Output>
      RolloutTask: MessageTypeDefinition<_recovery_v1_RolloutTask, _recovery_v1_RolloutTask__Output>
      ScoreResult: MessageTypeDefinition<_recovery_v1_ScoreResult, _recovery_v1_ScoreResult__Output>
      ScoreTask: MessageTypeDefinition<_recovery_v1_ScoreTask, _recovery_v1_ScoreTask__Output>
      Shutdown: MessageTypeDefinition<_recovery_v1_Shutdown, _recovery_v1_Shutdown__Output>
      TaskBundle: MessageTypeDefinition<_recovery_v1_TaskBundle, _recovery_v1_TaskBundle__Output>
      TaskError: MessageTypeDefinition<_recovery_v1_TaskError, _recovery_v1_TaskError__Output>
      Tensor: MessageTypeDefinition<_recovery_v1_Tensor, _recovery_v1_Tensor__Output>
      TrainBatch: MessageTypeDefinition<_recovery_v1_TrainBatch, _recovery_v1_TrainBatch__Output>
      TrainKind: EnumTypeDefinition
      TrainResult: MessageTypeDefinition<_recovery_v1_TrainResult, _recovery_v1_TrainResult__Output>
      Welcome: MessageTypeDefinition<_recovery_v1_Welcome, _recovery_v1_Welcome__Output>
      WorkerIdBinding: MessageTypeDefinition<_recovery_v1_WorkerIdBinding, _recovery_v1_WorkerIdBinding__Output>
      WorkerIdRecord: MessageTypeDefinition<_recovery_v1_WorkerIdRecord, _recovery_v1_WorkerIdRecord__Output>
      WorkerMessage: MessageTypeDefinition<_recovery_v1_WorkerMessage, _recovery_v1_WorkerMessage__Output>
    }
  }
}

