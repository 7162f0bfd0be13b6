// Original file: proto/recovery.proto


export interface Shutdown {
  'reason'?: (string);
  /**
   * finish or abandon in-flight work within this, then close the stream
   */
  'grace_ms'?: (number);
}

export interface Shutdown__Output {
  'reason': (string);
  /**
   * finish or abandon in-flight work within this, then close the stream
   */
  'grace_ms': (number);
}
