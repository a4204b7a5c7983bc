// Errors that map onto gRPC status codes. Handlers throw these; the server turns them
// into a status with the message, so a client always learns what was wrong.
import { Metadata, status, type ServiceError } from "@grpc/grpc-js";

/**
 * An error with a gRPC status, on both sides of the wire, under one name: a handler throws one
 * (toServiceError turns it into the status and its details) and the typed client rejects with
 * one (the status it got, and the RPC it called). `instanceof DistributeXError` and `codeName`
 * mean the same in the scheduler, the client and the CLI.
 */
export class DistributeXError extends Error {
  override readonly name = "DistributeXError";
  /** Server side: gRFC A6 pushback to send; a negative value tells clients not to retry this call here. */
  retryPushbackMs?: number;
  constructor(
    readonly code: status,
    readonly details: string,
    /** Client side: the RPC that failed ("" for an error a handler throws). */
    readonly method = "",
    /** Client side: the server asked not to retry this call against it (gRFC A6 pushback < 0). */
    readonly noRetryHere = false,
  ) {
    super(method ? `${method}: ${statusName(code)}: ${details}` : details);
  }

  get codeName(): string {
    return statusName(this.code);
  }
}

/** A scheduler that is draining: UNAVAILABLE, and "do not retry here" (another scheduler may take it). */
export function shuttingDown(msg: string): DistributeXError {
  const e = new DistributeXError(status.UNAVAILABLE, msg);
  e.retryPushbackMs = -1;
  return e;
}

export const invalidArgument = (msg: string) => new DistributeXError(status.INVALID_ARGUMENT, msg);
export const notFound = (msg: string) => new DistributeXError(status.NOT_FOUND, msg);
export const failedPrecondition = (msg: string) => new DistributeXError(status.FAILED_PRECONDITION, msg);
export const resourceExhausted = (msg: string) => new DistributeXError(status.RESOURCE_EXHAUSTED, msg);
export const unavailable = (msg: string) => new DistributeXError(status.UNAVAILABLE, msg);

/** Converts anything thrown in a handler into a ServiceError-shaped object for grpc-js callbacks. */
export function toServiceError(err: unknown): Partial<ServiceError> & { code: status; details: string } {
  if (err instanceof DistributeXError) {
    if (err.retryPushbackMs === undefined) return { code: err.code, details: err.details, message: err.details };
    const metadata = new Metadata();
    metadata.set("grpc-retry-pushback-ms", String(err.retryPushbackMs));
    return { code: err.code, details: err.details, message: err.details, metadata };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: status.INTERNAL, details: `internal error: ${message}`, message };
}

function statusName(code: number): string {
  return (status as unknown as Record<number, string>)[code] ?? `CODE_${code}`;
}
