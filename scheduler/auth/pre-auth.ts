// Authentication before the body. grpc-js calls a handler only once the whole request message
// is in, so a check made there (policy.ts guardService) comes after the scheduler has buffered
// up to the message limit (64 MiB) per stream, for anyone who can open a TLS connection. This
// server interceptor checks the credentials in a call's headers as they arrive and refuses the
// call before its body is read (grpc-js reads a call's messages only after its metadata passed
// the interceptors). The handler's guard still authenticates and authorizes: that second check
// hits the verified-token cache or reads the connection's certificate, both in the same tick.
// A caller whose role may not call the method (a read-only token on SubmitJob) is refused here
// too, before its body: authorization per RPC needs only the principal and the method's name.
// Methods that run without credentials (Join and RenewCertificate carry theirs in the request;
// health and reflection) take small messages only.
import * as grpc from "@grpc/grpc-js";
import { toServiceError } from "../../common/errors.js";
import { baseCallOf } from "../services/inbound-budget.js";
import { authenticate, type AuthenticationContext } from "./authenticate.js";
import type { Principal } from "./principal.js";

/** Who may call a method of a service (policy.ts's authorizers); throws PERMISSION_DENIED. */
type Authorize = (rpc: string, who: Principal) => void;

/** The largest request message a method open to anyone accepts (a join request is about 1 KiB). */
export const OPEN_MESSAGE_BYTES = 64 * 1024;

export class PreAuthGate {
  private ctx: AuthenticationContext | undefined;
  /** Guarded method path → its name and who may call it. */
  private readonly guarded = new Map<string, { rpc: string; authorize: Authorize }>();

  /** Callers of this service's methods, but those named `open`, must authenticate and be authorized from their headers. */
  guard(ctx: AuthenticationContext, service: grpc.ServiceDefinition, authorize: Authorize, open: ReadonlySet<string> = new Set()): void {
    this.ctx = ctx;
    for (const [rpc, def] of Object.entries(service)) if (!open.has(rpc)) this.guarded.set(def.path, { rpc, authorize });
  }

  readonly interceptor: grpc.ServerInterceptor = (method, call) => {
    const ctx = this.ctx;
    const guard = this.guarded.get(method.path);
    if (!ctx || !guard) {
      limitRequestBytes(call, OPEN_MESSAGE_BYTES);
      return new grpc.ServerInterceptingCall(call);
    }
    const refuse = (err: unknown): void => {
      const { code, details, metadata } = toServiceError(err);
      call.sendStatus({ code, details, metadata: metadata ?? null });
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            let who: ReturnType<typeof authenticate>;
            try {
              // `call` is how peer-tls.ts reaches the TLS socket for a refused certificate's reason.
              const caller = { metadata, getAuthContext: () => call.getAuthContext(), call };
              who = authenticate(caller, ctx);
            } catch (err) {
              refuse(err);
              return;
            }
            const admit = (principal: Principal): void => {
              try {
                guard.authorize(guard.rpc, principal);
              } catch (err) {
                refuse(err);
                return;
              }
              pass(metadata);
            };
            if (who instanceof Promise) who.then(admit, refuse);
            else admit(who);
          },
        }),
    });
  };
}

/**
 * Lowers the size limit of one call's request messages. grpc-js has one limit per server
 * (grpc.max_receive_message_length), checked from a message's length prefix before it is
 * buffered; the per-call decoder and its limit are internals (inbound-budget.ts baseCallOf). If
 * an upgrade moves them the server-wide limit still holds, and
 * test/e2e/security/unauthenticated-body.test.ts fails.
 */
function limitRequestBytes(call: grpc.ServerInterceptingCallInterface, bytes: number): void {
  const base = baseCallOf(call);
  if (!base) return;
  base.decoder.maxReadMessageLength = bytes;
  base.maxReceiveMessageSize = bytes;
}
