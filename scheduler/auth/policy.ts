// Authorization: one table says, for every RPC of distributex.v1.DistributeX, the least role
// that may call it; one wrapper applies it to every handler before the handler runs, and hands
// the handler the caller (principalOf). Tenant scoping of what a call reads or writes is the
// handlers' part (scopeOf): a non-admin sees and touches only its own tenant's jobs, results and
// kernels. An RPC with no entry here cannot be served: distributeXAuthorizer refuses to build.
import * as grpc from "@grpc/grpc-js";
import { DistributeXError, toServiceError } from "../../common/errors.js";
import { authenticate, permissionDenied, principalOf, setPrincipal, type AuthContext, type AuthenticatedCall } from "./authenticate.js";
import { DEFAULT_TENANT, roleAtLeast, type Principal, type Role } from "./principal.js";

export interface RpcPolicy {
  /** The least role that may call it. */
  role: Role;
  /** "tenant": acts only on the caller's tenant (admin: any); "cluster": cluster-wide data, admin only. */
  scope: "tenant" | "cluster";
}

/**
 * Reads of metadata need `read`; everything that creates, consumes or destroys a tenant's work
 * (including its results and the job event stream, which carry outputs' fate) needs `submit`;
 * what spans tenants or the cluster (nodes, alerts, tokens) needs `admin`. docs/security.md.
 */
export const DISTRIBUTEX_POLICY: Readonly<Record<string, RpcPolicy>> = Object.freeze({
  GetKernel: { role: "read", scope: "tenant" },
  GetJob: { role: "read", scope: "tenant" },
  ListJobs: { role: "read", scope: "tenant" },
  RegisterKernel: { role: "submit", scope: "tenant" },
  DeleteKernel: { role: "submit", scope: "tenant" },
  SubmitJob: { role: "submit", scope: "tenant" },
  SubmitJobStream: { role: "submit", scope: "tenant" },
  RunJob: { role: "submit", scope: "tenant" },
  WatchJob: { role: "submit", scope: "tenant" },
  GetResults: { role: "submit", scope: "tenant" },
  GetResultOutput: { role: "submit", scope: "tenant" },
  CancelJob: { role: "submit", scope: "tenant" },
  // Nodes and alerts describe the whole cluster (other tenants' jobs and hosts).
  ListNodes: { role: "admin", scope: "cluster" },
  WatchAlerts: { role: "admin", scope: "cluster" },
  CreateToken: { role: "admin", scope: "cluster" },
  ListTokens: { role: "admin", scope: "cluster" },
  RevokeToken: { role: "admin", scope: "cluster" },
  // Agents: join tokens and removal of a node (its certificate revoked).
  CreateJoinToken: { role: "admin", scope: "cluster" },
  RemoveNode: { role: "admin", scope: "cluster" },
});


/** Throws PERMISSION_DENIED unless the principal may call the RPC at all (tenant checks come later). */
export function authorize(rpc: string, policy: RpcPolicy | undefined, who: Principal): void {
  if (!policy) throw permissionDenied(`${rpc} has no access policy; nobody may call it`);
  if (who.kind === "insecure") return;
  if (who.kind === "node") throw permissionDenied(`${rpc} is a client RPC; an agent's node certificate (node ${who.nodeId}) cannot call it`);
  if (!roleAtLeast(who.role, policy.role)) {
    throw permissionDenied(`${rpc} needs role ${policy.role} or higher; token ${who.tokenId} has role ${who.role}`);
  }
}

/** What a caller may see: its tenant, or all tenants (admin, --insecure). */
export interface Scope {
  tenant: string;
  all: boolean;
  tokenId: string;
}

export function scopeOf(who: Principal): Scope {
  if (who.kind === "client") return { tenant: who.tenant, all: who.role === "admin", tokenId: who.tokenId };
  return { tenant: DEFAULT_TENANT, all: who.kind === "insecure", tokenId: "" };
}

/** The authenticated caller of a call that went through guardService. */
export function callerOf(call: object): Principal {
  const who = principalOf(call);
  if (!who) throw new DistributeXError(grpc.status.INTERNAL, "internal error: a handler ran without an authenticated caller");
  return who;
}

/** DistributeX: the policy table, checked whole when the service is built (an RPC without a row cannot be served). */
export function distributeXAuthorizer(service: grpc.ServiceDefinition, policies: Readonly<Record<string, RpcPolicy>> = DISTRIBUTEX_POLICY): (rpc: string, who: Principal) => void {
  for (const name of Object.keys(service)) {
    if (!policies[name]) throw new Error(`${name} has no entry in the access policy table (scheduler/auth/policy.ts)`);
  }
  return (rpc, who) => authorize(rpc, policies[rpc], who);
}

/** AgentService: only agents holding a node certificate (or anyone, with --insecure). */
export function requireNode(method: string, principal: Principal): void {
  if (principal.kind === "client") throw permissionDenied(`AgentService.${method} needs a node certificate: an API token cannot act as an agent (join with \`distx agent --join-token\`)`);
}

type Handler = (
  call: AuthenticatedCall & { cancelled?: boolean; emit(event: "error", err: unknown): boolean },
  callback?: grpc.sendUnaryData<unknown>,
) => void;

export interface GuardOptions {
  /** Who may call what, after authentication; throws PERMISSION_DENIED. */
  authorize: (rpc: string, who: Principal) => void;
  /** Methods that run without authentication (AgentService.Join: its credential is in the request). */
  open?: ReadonlySet<string>;
}

/**
 * Wraps every handler of a service: authenticate, authorize, then run the handler with
 * principalOf(call) set. A failure answers with its status before the handler runs.
 */
export function guardService<H extends object>(service: grpc.ServiceDefinition, handlers: H, ctx: AuthContext, options: GuardOptions): H {
  const out: Record<string, Handler> = {};
  for (const name of Object.keys(service)) {
    const handler = (handlers as Record<string, Handler | undefined>)[name];
    if (!handler) continue;
    if (options.open?.has(name)) {
      out[name] = handler;
      continue;
    }
    const refuse = (call: Parameters<Handler>[0], callback: Parameters<Handler>[1], err: unknown): void => {
      const status = toServiceError(err);
      if (callback) callback(status);
      else call.emit("error", status);
    };
    /** Authorizes a known caller and runs the handler; false (after answering) when refused. */
    const admit = (call: Parameters<Handler>[0], callback: Parameters<Handler>[1], who: Principal): boolean => {
      try {
        options.authorize(name, who);
      } catch (err) {
        refuse(call, callback, err);
        return false;
      }
      setPrincipal(call, who);
      return true;
    };
    out[name] = (call, callback) => {
      let who: Principal | Promise<Principal>;
      try {
        who = authenticate(call, ctx);
      } catch (err) {
        refuse(call, callback, err);
        return;
      }
      // The common case (a token verified within the last second, a node certificate): the handler
      // runs in this tick. Outside the try: a handler answers for itself, never twice.
      if (!(who instanceof Promise)) {
        if (admit(call, callback, who)) handler(call, callback);
        return;
      }
      who.then(
        // A stream the caller dropped while it was being authenticated is not started (its listeners would never go).
        (principal) => {
          if (admit(call, callback, principal) && !call.cancelled) handler(call, callback);
        },
        (err: unknown) => refuse(call, callback, err),
      );
    };
  }
  return out as unknown as H;
}
