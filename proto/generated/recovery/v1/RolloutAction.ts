// Original file: proto/recovery.proto

import type { Tensor as _recovery_v1_Tensor, Tensor__Output as _recovery_v1_Tensor__Output } from '../../recovery/v1/Tensor.ts';
import type { FlowStep as _recovery_v1_FlowStep, FlowStep__Output as _recovery_v1_FlowStep__Output } from '../../recovery/v1/FlowStep.ts';

export interface RolloutAction {
  'sample_id'?: (string);
  'group_index'?: (number);
  /**
   * [3,H,W] = mean + sigma * noise
   */
  'action'?: (_recovery_v1_Tensor | null);
  /**
   * [3,H,W], optional (absent unless asked for by config)
   */
  'mean'?: (_recovery_v1_Tensor | null);
  /**
   * Gaussian log-density averaged over non-batch dimensions
   */
  'logp'?: (number | string);
  /**
   * [3,H,W] per-element log-density; only if RolloutTask.want_logp_map (dense advantages)
   */
  'logp_map'?: (_recovery_v1_Tensor | null);
  /**
   * model.family = flow: `action` is the sampler's final image (image space), logp is unused (0), and each
   * trained step of the trajectory (the SDE window) travels here, in step order (docs/flow.md).
   */
  'flow_steps'?: (_recovery_v1_FlowStep)[];
}

export interface RolloutAction__Output {
  'sample_id': (string);
  'group_index': (number);
  /**
   * [3,H,W] = mean + sigma * noise
   */
  'action': (_recovery_v1_Tensor__Output | null);
  /**
   * [3,H,W], optional (absent unless asked for by config)
   */
  'mean': (_recovery_v1_Tensor__Output | null);
  /**
   * Gaussian log-density averaged over non-batch dimensions
   */
  'logp': (number);
  /**
   * [3,H,W] per-element log-density; only if RolloutTask.want_logp_map (dense advantages)
   */
  'logp_map': (_recovery_v1_Tensor__Output | null);
  /**
   * model.family = flow: `action` is the sampler's final image (image space), logp is unused (0), and each
   * trained step of the trajectory (the SDE window) travels here, in step order (docs/flow.md).
   */
  'flow_steps': (_recovery_v1_FlowStep__Output)[];
}
