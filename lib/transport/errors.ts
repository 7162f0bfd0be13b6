import * as grpc from '@grpc/grpc-js';

/** gRPC status codes worth another try after a backoff (the other side may come back / be replaced). */
const RETRYABLE = new Set<grpc.status>([
  grpc.status.UNAVAILABLE,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.CANCELLED,
  grpc.status.ABORTED,
  grpc.status.INTERNAL,
  grpc.status.UNKNOWN,
  grpc.status.RESOURCE_EXHAUSTED,
]);

/** A stream or connection that ended with a non-OK gRPC status. */
export class TransportError extends Error {
  readonly code: grpc.status;
  readonly details: string;
  readonly retryable: boolean;
  constructor(code: grpc.status, details: string, context?: string) {
    super(`${context ? context + ': ' : ''}${grpc.status[code] ?? code}: ${details}`);
    this.name = 'TransportError';
    this.code = code;
    this.details = details;
    this.retryable = RETRYABLE.has(code);
  }

  static fromServiceError(err: unknown, context?: string): TransportError {
    if (err instanceof TransportError) return err;
    const e = err as Partial<grpc.ServiceError>;
    if (typeof e?.code === 'number') return new TransportError(e.code, e.details ?? e.message ?? 'no details', context);
    return new TransportError(grpc.status.UNKNOWN, err instanceof Error ? err.message : String(err), context);
  }
}

/** The status a stream ended with, and who ended it. */
export interface StreamEnd {
  code: grpc.status;
  details: string;
  /** 'local': this side ended it (close(), fail(), server shutdown); 'remote': the other side did. */
  by: 'local' | 'remote';
}

/**
 * A message over the gRPC message limit (maxMessageBytes), refused before it was written: the stream stays open. A
 * RangeError, as the other refusals of a send are (a task bundle larger than the worker asked for), so that dispatch
 * splits either; the learner link fails the run only for this one (a train batch cannot be split).
 */
export class MessageTooLargeError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'MessageTooLargeError';
  }
}
