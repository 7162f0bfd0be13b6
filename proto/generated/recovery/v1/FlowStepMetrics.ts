// Original file: proto/recovery.proto


/**
 * One trained step index of a Flow-GRPO batch (docs/flow.md): means over the batch's rows at that step.
 */
export interface FlowStepMetrics {
  /**
   * the step's index in the sampling trajectory
   */
  'index'?: (number);
  /**
   * rows (actions) trained at this step in the batch
   */
  'rows'?: (number);
  'ratio_mean'?: (number | string);
  'clip_fraction'?: (number | string);
  /**
   * 0 at beta 0 (no reference forward)
   */
  'kl'?: (number | string);
}

/**
 * One trained step index of a Flow-GRPO batch (docs/flow.md): means over the batch's rows at that step.
 */
export interface FlowStepMetrics__Output {
  /**
   * the step's index in the sampling trajectory
   */
  'index': (number);
  /**
   * rows (actions) trained at this step in the batch
   */
  'rows': (number);
  'ratio_mean': (number);
  'clip_fraction': (number);
  /**
   * 0 at beta 0 (no reference forward)
   */
  'kl': (number);
}
