// Runs authenticate() before every handler of a service and records the caller's principal
// (principalOf(call)). Handlers start only for authenticated callers; a failure answers
// UNAUTHENTICATED/PERMISSION_DENIED without running them.
import type * as grpc from "@grpc/grpc-js";
import { toServiceError } from "../../common/errors.js";
import { authenticate, permissionDenied, setPrincipal, type AuthenticatedCall, type AuthenticationContext } from "./authenticate.js";
import type { Principal } from "./principal.js";

export interface GuardOptions {
  /** Methods that run without authentication (AgentService.Join: its credential is in the request). */
  open?: ReadonlySet<string>;
  /** Extra check of the principal for every method (e.g. AgentService needs a node certificate). */
  check?: (principal: Principal, method: string) => void;
}

export function guardHandlers(
  service: grpc.ServiceDefinition,
  handlers: grpc.UntypedServiceImplementation,
  ctx: AuthenticationContext,
  options: GuardOptions = {},
): grpc.UntypedServiceImplementation {
  if (ctx.insecure) {
    // Still record a principal so handlers can rely on principalOf(call).
    const out: grpc.UntypedServiceImplementation = {};
    for (const [name, handler] of Object.entries(handlers))
      out[name] = ((call: object, cb?: unknown) => {
        setPrincipal(call, { kind: "insecure" });
        return (handler as (...a: unknown[]) => void)(call, cb);
      }) as grpc.UntypedHandleCall;
    return out;
  }
  const out: grpc.UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(handlers)) {
    const def = service[name];
    if (!def || options.open?.has(name)) {
      out[name] = handler;
      continue;
    }
    const unary = !def.responseStream;
    out[name] = ((call: AuthenticatedCall & grpc.ServerWritableStream<unknown, unknown>, callback?: grpc.sendUnaryData<unknown>) => {
      authenticate(call, ctx)
        .then((principal) => {
          options.check?.(principal, name);
          setPrincipal(call, principal);
          (handler as (...a: unknown[]) => void)(call, callback);
        })
        .catch((err: unknown) => {
          const status = toServiceError(err);
          if (unary && callback) callback(status);
          else call.emit("error", status);
        });
    }) as grpc.UntypedHandleCall;
  }
  return out;
}

/** AgentService: only agents holding a node certificate (or anyone, with --insecure). */
export function requireNode(principal: Principal, method: string): void {
  if (principal.kind === "client") throw permissionDenied(`AgentService.${method} needs a node certificate: an API token cannot act as an agent (join with \`distx agent --join-token\`)`);
}
