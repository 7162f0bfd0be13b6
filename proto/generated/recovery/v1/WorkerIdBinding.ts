// Original file: proto/recovery.proto


/**
 * One worker id bound to the role token that first used it (orchestrator/id-bindings.ts).
 */
export interface WorkerIdBinding {
  /**
   * `<role>/<worker id>`, role rollout, reward or learner
   */
  'key'?: (string);
  /**
   * `token:<16 hex digits>` (tokenCredentialId), never the token
   */
  'credential'?: (string);
}

/**
 * One worker id bound to the role token that first used it (orchestrator/id-bindings.ts).
 */
export interface WorkerIdBinding__Output {
  /**
   * `<role>/<worker id>`, role rollout, reward or learner
   */
  'key': (string);
  /**
   * `token:<16 hex digits>` (tokenCredentialId), never the token
   */
  'credential': (string);
}
