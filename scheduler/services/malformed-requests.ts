// Requests grpc-js could not decode, or that a precheck refused from their raw bytes, answered
// with the caller's fault (INVALID_ARGUMENT or the precheck's status) rather than INTERNAL.
import * as grpc from "@grpc/grpc-js";
import { toServiceError } from "../../common/errors.js";
import { refusedMessage } from "../submit-precheck.js";

const MALFORMED = Symbol("malformed request");

/**
 * grpc-js answers a request it cannot decode with INTERNAL. The fault is the caller's, so decode
 * failures of unary requests are turned into INVALID_ARGUMENT with the decoder's message.
 */
export function rejectMalformedRequests(
  service: grpc.ServiceDefinition,
  handlers: grpc.UntypedServiceImplementation,
  /** Checks of a method's raw request bytes before they are decoded; a throw is the answer. */
  prechecks: Record<string, (bytes: Buffer) => void> = {},
): [grpc.ServiceDefinition, grpc.UntypedServiceImplementation] {
  const wrappedService: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  const wrappedHandlers: grpc.UntypedServiceImplementation = {};
  for (const [name, def] of Object.entries(service)) {
    const handler = handlers[name];
    const precheck = prechecks[name];
    if (def.requestStream && handler && precheck) {
      // Each streamed message is checked before it is decoded; a refused one reaches the handler
      // as a marker (submit-precheck.ts refusalOf), which answers with its status.
      wrappedService[name] = {
        ...def,
        requestDeserialize: (bytes: Buffer) => {
          try {
            precheck(bytes);
          } catch (err) {
            return refusedMessage(toServiceError(err));
          }
          return def.requestDeserialize(bytes);
        },
      };
      wrappedHandlers[name] = handler;
      continue;
    }
    if (def.requestStream || !handler) {
      wrappedService[name] = def;
      if (handler) wrappedHandlers[name] = handler;
      continue;
    }
    wrappedService[name] = {
      ...def,
      requestDeserialize: (bytes: Buffer) => {
        try {
          precheck?.(bytes);
        } catch (err) {
          return { [MALFORMED]: toServiceError(err) };
        }
        try {
          return def.requestDeserialize(bytes);
        } catch (err) {
          return { [MALFORMED]: { code: grpc.status.INVALID_ARGUMENT, details: `malformed ${name} request: ${(err as Error).message}` } };
        }
      },
    };
    wrappedHandlers[name] = ((call: grpc.ServerUnaryCall<Record<symbol, { code: grpc.status; details: string }>, unknown>, callbackOrUndefined?: grpc.sendUnaryData<unknown>) => {
      const error = call.request?.[MALFORMED];
      if (error === undefined) return (handler as (...a: unknown[]) => void)(call, callbackOrUndefined);
      if (callbackOrUndefined) callbackOrUndefined(error);
      else (call as unknown as grpc.ServerWritableStream<unknown, unknown>).emit("error", error);
    }) as grpc.UntypedHandleCall;
  }
  return [wrappedService as grpc.ServiceDefinition, wrappedHandlers];
}
