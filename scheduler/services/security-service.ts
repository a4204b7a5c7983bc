// The RPCs of the TLS bootstrap and node lifecycle: AgentService.Join / RenewCertificate and the
// admin's DistributeX.CreateJoinToken / RemoveNode. Who may call the admin pair is decided once,
// by the policy table (scheduler/auth/policy.ts, applied by guardService before these run).
import { status, type sendUnaryData } from "@grpc/grpc-js";
import { DistributeXError, invalidArgument, toServiceError } from "../../common/errors.js";
import type { AgentServiceHandlers, DistributeXHandlers } from "../../common/types.js";
import { nodePrincipal, unauthenticated } from "../auth/authenticate.js";
import { NODE_ID_PATTERN } from "../auth/pki.js";
import type { ClusterSecurity } from "../auth/security.js";
import { sealRecipient, type SealRecipient } from "../../common/record-seal.js";
import type { SchedulerCore } from "../core.js";

const MAX_JOIN_TTL_MS = 7 * 86_400_000;

const answer = <T>(cb: sendUnaryData<T>, work: () => Promise<T>) =>
  work().then(
    (res) => cb(null, res),
    (err) => cb(toServiceError(err)),
  );

/**
 * `renewed`: told each node certificate renewed; its new key seals the node's Kafka assignments
 * from then on, at once (the agent holds the new key before it asks: NodeKeyRing in common/record-seal.ts).
 */
export function joinHandlers(security: ClusterSecurity, renewed?: (nodeId: string, key: SealRecipient) => void): Pick<AgentServiceHandlers, "Join" | "RenewCertificate"> {
  return {
    Join: (call, callback) =>
      answer(callback, async () => {
        const { nodeId, certificatePem, caPem } = await security.join(call.request.joinToken, call.request.csrPem);
        return { nodeId, certificatePem, caPem };
      }),
    RenewCertificate: (call, callback) =>
      answer(callback, async () => {
        // Open to unauthenticated calls (scheduler.ts): a node whose certificate expired while it
        // was stopped or cut off proves its old key instead (auth/expired-renewal.ts).
        // A certificate that expired on a still-open connection goes the proof path, as on a new one.
        const p = nodePrincipal(call, security.context, Date.now(), "ignore");
        if (p?.kind === "node") {
          const res = await security.renew(p.nodeId, call.request.csrPem);
          renewed?.(p.nodeId, sealRecipient(res.certificatePem));
          return res;
        }
        if (!call.request.expiredCertPem) throw unauthenticated("renewal needs the node's current certificate, or its expired one and a proof of its key");
        const { nodeId, ...res } = await security.renewExpired({ certPem: call.request.expiredCertPem, csrPem: call.request.csrPem, proof: call.request.proof });
        renewed?.(nodeId, sealRecipient(res.certificatePem));
        return res;
      }),
  };
}

export function adminSecurityHandlers(security: ClusterSecurity, core: SchedulerCore): Pick<DistributeXHandlers, "CreateJoinToken" | "RemoveNode"> {
  return {
    CreateJoinToken: (call, callback) =>
      answer(callback, async () => {
        const ttl = Number(call.request.ttlMs) || undefined;
        if (ttl !== undefined && ttl > MAX_JOIN_TTL_MS) throw invalidArgument(`ttl_ms must be at most ${MAX_JOIN_TTL_MS} (7 days)`);
        const uses = call.request.uses || undefined;
        if (uses !== undefined && uses > 10_000) throw invalidArgument("uses must be at most 10000");
        return security.createJoinToken(ttl, uses, call.request.description.slice(0, 200));
      }),
    RemoveNode: (call, callback) =>
      answer(callback, async () => {
        const id = call.request.nodeId;
        if (!NODE_ID_PATTERN.test(id)) throw invalidArgument("node_id must look like node-<hex>");
        const node = core.registry.get(id);
        if (security.insecure) {
          if (!node) throw new DistributeXError(status.NOT_FOUND, `unknown node ${id}`);
        } else await security.removeNode(id);
        const wasConnected = !!node && node.state !== "NODE_STATE_DOWN";
        core.registry.markDown(id, "removed by an admin");
        return { wasConnected };
      }),
  };
}
