// Original file: proto/recovery.proto


export interface Capabilities {
  /**
   * "cpu", "cuda:0", "webgpu:0": the worker's --device
   */
  'device'?: (string);
  /**
   * most items (rollout) / candidates (reward) / samples (learner) per task
   */
  'max_batch'?: (number);
  /**
   * tasks it accepts at once; 0 means 1
   */
  'max_in_flight'?: (number);
  /**
   * dtypes it can decode; empty means all of float32, float16, uint8
   */
  'tensor_dtypes'?: (string)[];
  /**
   * free-form facts: "clip_encoder", "ort_version", "hostname", ...
   */
  'labels'?: ({[key: string]: string});
  /**
   * Most tasks it takes in one TaskBundle. 0 or 1: one task per message (the orchestrator sends it no bundle).
   * A worker that batches several tasks into one graph call asks for several: one message then carries them.
   */
  'max_tasks_per_message'?: (number);
}

export interface Capabilities__Output {
  /**
   * "cpu", "cuda:0", "webgpu:0": the worker's --device
   */
  'device': (string);
  /**
   * most items (rollout) / candidates (reward) / samples (learner) per task
   */
  'max_batch': (number);
  /**
   * tasks it accepts at once; 0 means 1
   */
  'max_in_flight': (number);
  /**
   * dtypes it can decode; empty means all of float32, float16, uint8
   */
  'tensor_dtypes': (string)[];
  /**
   * free-form facts: "clip_encoder", "ort_version", "hostname", ...
   */
  'labels': ({[key: string]: string});
  /**
   * Most tasks it takes in one TaskBundle. 0 or 1: one task per message (the orchestrator sends it no bundle).
   * A worker that batches several tasks into one graph call asks for several: one message then carries them.
   */
  'max_tasks_per_message': (number);
}
