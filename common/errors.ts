// Errors that map onto gRPC status codes. Handlers throw these; the server turns them
// into a status with the message, so a client always learns what was wrong.
import { Metadata, status, type ServiceError } from "@grpc/grpc-js";

export class DistxError extends Error {
  override readonly name: string = "DistxError";
  /** gRFC A6 server pushback: a negative value tells clients not to retry this call here. */
  retryPushbackMs?: number;
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
  }
}

/** A scheduler that is draining: UNAVAILABLE, and "do not retry here" (another scheduler may take it). */
export function shuttingDown(msg: string): DistxError {
  const e = new DistxError(status.UNAVAILABLE, msg);
  e.retryPushbackMs = -1;
  return e;
}

export const invalidArgument = (msg: string) => new DistxError(status.INVALID_ARGUMENT, msg);
export const notFound = (msg: string) => new DistxError(status.NOT_FOUND, msg);
export const failedPrecondition = (msg: string) => new DistxError(status.FAILED_PRECONDITION, msg);
export const resourceExhausted = (msg: string) => new DistxError(status.RESOURCE_EXHAUSTED, msg);
export const unavailable = (msg: string) => new DistxError(status.UNAVAILABLE, msg);

/** Converts anything thrown in a handler into a ServiceError-shaped object for grpc-js callbacks. */
export function toServiceError(err: unknown): Partial<ServiceError> & { code: status; details: string } {
  if (err instanceof DistxError) {
    if (err.retryPushbackMs === undefined) return { code: err.code, details: err.message, message: err.message };
    const metadata = new Metadata();
    metadata.set("grpc-retry-pushback-ms", String(err.retryPushbackMs));
    return { code: err.code, details: err.message, message: err.message, metadata };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: status.INTERNAL, details: `internal error: ${message}`, message };
}

export function statusName(code: number): string {
  return (status as unknown as Record<number, string>)[code] ?? `CODE_${code}`;
}
