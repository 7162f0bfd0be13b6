// Original file: proto/recovery.proto


/**
 * The task's result is no longer wanted (lease expired and it was re-dispatched, run shrinking, ...).
 */
export interface CancelTask {
  'task_id'?: (string);
  'reason'?: (string);
}

/**
 * The task's result is no longer wanted (lease expired and it was re-dispatched, run shrinking, ...).
 */
export interface CancelTask__Output {
  'task_id': (string);
  'reason': (string);
}
