// Authorization: one table says, for every RPC of distributex.v1.DistributeX, the least role
// that may call it; one wrapper applies it to every handler before the handler runs, and hands
// the handler the caller (principalOf). Tenant scoping of what a call reads or writes is the
// handlers' part (scopeOf): a non-admin sees and touches only its own tenant's jobs, results and
// kernels. An RPC with no entry here cannot be served: guardService refuses to build.
import * as grpc from "@grpc/grpc-js";
import { DistxError, toServiceError } from "../../common/errors.js";
import { authenticate, type AuthContext } from "./authenticate.js";
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
  WatchJob: { role: "submit", scope: "tenant" },
  GetResults: { role: "submit", scope: "tenant" },
  CancelJob: { role: "submit", scope: "tenant" },
  // Nodes and alerts describe the whole cluster (other tenants' jobs and hosts).
  ListNodes: { role: "admin", scope: "cluster" },
  WatchAlerts: { role: "admin", scope: "cluster" },
  CreateToken: { role: "admin", scope: "cluster" },
  ListTokens: { role: "admin", scope: "cluster" },
  RevokeToken: { role: "admin", scope: "cluster" },
});

export const permissionDenied = (msg: string) => new DistxError(grpc.status.PERMISSION_DENIED, msg);

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

const principals = new WeakMap<object, Principal>();

/** The authenticated caller of a call that went through guardService. */
export function principalOf(call: object): Principal {
  const who = principals.get(call);
  if (!who) throw new DistxError(grpc.status.INTERNAL, "internal error: a handler ran without an authenticated caller");
  return who;
}

type Handler = (call: { metadata: grpc.Metadata; cancelled?: boolean; emit(event: "error", err: unknown): boolean }, callback?: grpc.sendUnaryData<unknown>) => void;

/**
 * Wraps every handler of a service: authenticate, authorize by the policy table, then run the
 * handler with principalOf(call) set. A failure answers with its status before the handler runs.
 */
export function guardService<H extends object>(service: grpc.ServiceDefinition, handlers: H, policies: Readonly<Record<string, RpcPolicy>>, ctx: AuthContext): H {
  const out: Record<string, Handler> = {};
  for (const name of Object.keys(service)) {
    const policy = policies[name];
    if (!policy) throw new Error(`${name} has no entry in the access policy table (scheduler/auth/policy.ts)`);
    const def = service[name]!;
    if (def.requestStream) throw new Error(`${name}: client-streaming RPCs are not guarded yet`);
    const handler = (handlers as Record<string, Handler | undefined>)[name];
    if (!handler) continue;
    out[name] = (call, callback) => {
      authenticate(call, ctx)
        .then((who) => {
          authorize(name, policy, who);
          principals.set(call, who);
        })
        .then(
          // Outside the catch: a handler answers for itself, never twice. A stream the caller
          // dropped while it was being authenticated is not started (its listeners would never go).
          () => {
            if (!call.cancelled) handler(call, callback);
          },
          (err: unknown) => {
            const status = toServiceError(err);
            if (callback) callback(status);
            else call.emit("error", status);
          },
        );
    };
  }
  return out as unknown as H;
}
