// Original file: proto/recovery.proto


export interface Heartbeat {
  /**
   * 1, 2, 3, ... per stream
   */
  'seq'?: (number);
  'sent_unix_ms'?: (number | string);
  'policy_version'?: (number);
  /**
   * tasks (task_id / batch_id) being worked on: renews their leases
   */
  'active_task_ids'?: (string)[];
  '_policy_version'?: "policy_version";
}

export interface Heartbeat__Output {
  /**
   * 1, 2, 3, ... per stream
   */
  'seq': (number);
  'sent_unix_ms': (number);
  'policy_version'?: (number);
  /**
   * tasks (task_id / batch_id) being worked on: renews their leases
   */
  'active_task_ids': (string)[];
  '_policy_version'?: "policy_version";
}
