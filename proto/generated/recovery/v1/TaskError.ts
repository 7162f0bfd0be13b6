// Original file: proto/recovery.proto


/**
 * A task that could not be completed. Never report a failed reward as 0: send this.
 */
export interface TaskError {
  /**
   * task_id, or batch_id for a TrainBatch
   */
  'task_id'?: (string);
  'attempt'?: (number);
  /**
   * short machine-readable reason: "bad_input", "non_finite", "oom", "internal", ...
   */
  'code'?: (string);
  /**
   * human-readable, names what failed
   */
  'message'?: (string);
  /**
   * true: another attempt (maybe elsewhere) may succeed
   */
  'retryable'?: (boolean);
}

/**
 * A task that could not be completed. Never report a failed reward as 0: send this.
 */
export interface TaskError__Output {
  /**
   * task_id, or batch_id for a TrainBatch
   */
  'task_id': (string);
  'attempt': (number);
  /**
   * short machine-readable reason: "bad_input", "non_finite", "oom", "internal", ...
   */
  'code': (string);
  /**
   * human-readable, names what failed
   */
  'message': (string);
  /**
   * true: another attempt (maybe elsewhere) may succeed
   */
  'retryable': (boolean);
}
