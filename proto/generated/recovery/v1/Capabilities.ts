// Original file: proto/recovery.proto


export interface Capabilities {
  /**
   * "cpu", "cuda:0", ...
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
}

export interface Capabilities__Output {
  /**
   * "cpu", "cuda:0", ...
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
}
