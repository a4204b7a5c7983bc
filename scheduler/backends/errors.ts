// Classifies errors of the durable backends (Kafka journal, Redis store) into a gRPC status whose
// message says whether a retry is safe. A permanent refusal (a record over the topic's
// max.message.bytes) must not read as UNAVAILABLE, or retrying clients would loop on it for ever.
import { status } from "@grpc/grpc-js";
import { DistributeXError } from "../../common/errors.js";

/** Kafka protocol error types that a retry cannot fix: the request itself is refused. */
const KAFKA_TOO_LARGE = new Set(["MESSAGE_TOO_LARGE", "RECORD_LIST_TOO_LARGE", "INVALID_RECORD"]);
const KAFKA_REFUSED = new Set(["TOPIC_AUTHORIZATION_FAILED", "CLUSTER_AUTHORIZATION_FAILED", "INVALID_REQUIRED_ACKS", "UNSUPPORTED_VERSION", "POLICY_VIOLATION"]);

interface ErrorLike {
  message?: string;
  type?: string;
  name?: string;
  cause?: unknown;
  originalError?: unknown;
  retriable?: boolean;
}

function chain(err: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  let e = err as ErrorLike | undefined;
  for (let i = 0; e && typeof e === "object" && i < 8; i++) {
    out.push(e);
    e = (e.cause ?? e.originalError) as ErrorLike | undefined;
  }
  return out;
}

/**
 * A DistributeXError for a backend failure during `what` (e.g. "could not write the submission
 * durably"): RESOURCE_EXHAUSTED for a too-large record, FAILED_PRECONDITION for a refusal by
 * configuration, UNAVAILABLE (retry safe) for everything transient. A DistributeXError passes through.
 */
export function backendError(what: string, err: unknown): DistributeXError {
  if (err instanceof DistributeXError) return err;
  const links = chain(err);
  const detail = links.map((l) => l.message).filter(Boolean)[0] ?? String(err);
  const type = links.map((l) => l.type).find((t) => t !== undefined);
  if ((type && KAFKA_TOO_LARGE.has(type)) || /too large|exceeds the maximum|max\.message\.bytes/i.test(detail)) {
    return new DistributeXError(status.RESOURCE_EXHAUSTED, `${what}: the broker refused the record as too large (${detail}); not retryable: split the job into smaller ones`);
  }
  if (type && KAFKA_REFUSED.has(type)) {
    return new DistributeXError(status.FAILED_PRECONDITION, `${what}: the broker refused it (${type}: ${detail}); not retryable until the cluster's configuration changes`);
  }
  if (/^(NOPERM|WRONGTYPE|ERR unknown command)/.test(detail)) {
    return new DistributeXError(status.FAILED_PRECONDITION, `${what}: the store refused it (${detail}); not retryable until the store's configuration changes`);
  }
  return new DistributeXError(status.UNAVAILABLE, `${what}: ${detail}; retry is safe`);
}
