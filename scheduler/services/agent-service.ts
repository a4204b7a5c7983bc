// The agent-facing gRPC service (distributex.v1.AgentService).
import * as grpc from "@grpc/grpc-js";
import { failedPrecondition, invalidArgument, notFound, toServiceError } from "../../common/errors.js";
import { sealRecipient, type SealRecipient } from "../../common/record-seal.js";
import { agentVersionProblem, packageVersion } from "../../common/version.js";
import { isKernelId } from "../../common/hash.js";
import type { Logger } from "../../common/logger.js";
import { Coalescer } from "../../common/coalescer.js";
import { callAt } from "../../common/call-at.js";
import { SESSION_MESSAGE_BUDGET_BYTES, splitByBytes } from "../../common/split-by-bytes.js";
import { assignmentBytes } from "../../common/kafka-wire.js";
/** The service definition to serve: the session writes assignments straight from the submitted bytes. */
export { withDirectAssignments } from "../../common/assignment-wire.js";
import type { AgentMessage, AgentServiceHandlers, AssignmentIn, CancellationIn, SchedulerMessageIn } from "../../common/types.js";
import type { KafkaRouteShape } from "../../common/kafka-agent-link.js";

/** With a Kafka bus: where each agent reads its assignments, and how they and cancels are sent there. */
export interface AgentRouting {
  route(nodeId: string): KafkaRouteShape;
  /** `sealTo`: the node's certificate key (secure clusters); throws when it is needed and absent. */
  sendAssignments(nodeId: string, items: AssignmentIn[], sealTo: SealRecipient | undefined): void;
  /** Behind the assignments sent before it, on the same path: a cancel must not overtake what it cancels. */
  sendCancel(nodeId: string, cancel: CancellationIn, sealTo: SealRecipient | undefined): void;
}
import type { SchedulerCore } from "../core.js";
import { kernelInfo } from "./client-service.js";
import { expiredMessage, permissionDenied, principalOf, unauthenticated } from "../auth/authenticate.js";
import type { ClusterSecurity } from "../auth/security.js";
import { fetchBlobHandler } from "./blob-service.js";
import { outputSettings, uploadOutputHandler, type OutputConfig } from "./output-service.js";
import { UploadFence } from "./upload-fence.js";

export function agentHandlers(
  core: SchedulerCore,
  heartbeatIntervalMs: number,
  log: Logger,
  routing?: AgentRouting,
  security?: ClusterSecurity,
  /** Outputs by reference (output-service.ts); none without. */
  outputConfig?: OutputConfig,
): Pick<AgentServiceHandlers, "Register" | "Session" | "FetchKernel" | "FetchBlob" | "UploadOutput"> {
  // Open sessions by node, so that removing a node closes them at once: usually one, two while an
  // agent moves its session to a renewed certificate (the old one until the agent ends it).
  const sessions = new Map<string, Set<(reason: string) => void>>();
  security?.on("node_removed", (id: string) => {
    for (const drop of [...(sessions.get(id) ?? [])]) drop("the node was removed by an admin");
  });
  const outputs = outputConfig ? outputSettings(outputConfig) : { byRefBytes: 0, quotaBytes: () => Infinity };
  return {
    FetchBlob: fetchBlobHandler(core, log, outputConfig?.outputStallMs),
    UploadOutput: uploadOutputHandler(core, outputs, log, new UploadFence(core.registry, security)),
    Register: (call, callback) => {
      const profile = call.request.profile;
      if (!profile || !profile.cpu || profile.workers < 1) {
        callback(toServiceError(invalidArgument("register needs a hardware profile with cpu and workers ≥ 1")));
        return;
      }
      // Before anything is recorded: an agent this release cannot work with is told why, and stays out.
      const refused = agentVersionProblem(call.request.agentVersion, packageVersion());
      if (refused) {
        log.warn({ event: "agent_refused", agentVersion: call.request.agentVersion, schedulerVersion: packageVersion(), host: profile.hostname }, refused);
        callback(toServiceError(failedPrecondition(refused)));
        return;
      }
      // With mTLS the node id is the one in the caller's certificate, bound at join.
      const principal = principalOf(call);
      const boundId = principal?.kind === "node" ? principal.nodeId : undefined;
      if (boundId) {
        const old = core.registry.get(boundId);
        if (old && old.state !== "NODE_STATE_DOWN") core.registry.markDown(boundId, "the node registered again");
      }
      // A secure cluster's Kafka assignments are sealed to the certificate's key: a node whose
      // key cannot take them is refused here, not sent its work in clear.
      let sealTo: SealRecipient | undefined;
      if (routing && principal?.kind === "node") {
        try {
          sealTo = sealRecipient(principal.certDer!);
        } catch (err) {
          log.warn({ event: "register_refused", nodeId: boundId, err: (err as Error).message }, "node refused: its certificate key cannot seal assignments");
          callback(toServiceError(failedPrecondition(`the node certificate's key cannot seal Kafka assignments (${(err as Error).message}); not retryable: join again for a P-256 certificate`)));
          return;
        }
      }
      const node = core.registry.register(profile, boundId, call.request.agentVersion, call.request.reservedCores);
      if (sealTo) core.registry.setSealKey(node.id, sealTo);
      log.info(
        { event: "node_registered", nodeId: node.id, agentVersion: call.request.agentVersion, reservedCores: call.request.reservedCores, host: profile.hostname, cpu: profile.cpu.model, workers: profile.workers, speed: node.speed, gpus: profile.gpus.length },
        "node registered",
      );
      callback(null, { nodeId: node.id, heartbeatIntervalMs, kafka: routing ? routing.route(node.id) : null, outputByRefBytes: String(outputs.byRefBytes) });
    },

    Session: (call: grpc.ServerDuplexStream<AgentMessage, SchedulerMessageIn>) => {
      let nodeId = "";
      let attached: { send?: unknown } | undefined;
      let ownSend: unknown;
      let drop: ((reason: string) => void) | undefined;
      let expiry: { cancel(): void } | undefined;
      const closed = (reason: string) => {
        expiry?.cancel();
        if (drop) sessions.get(nodeId)?.delete(drop);
        // Only the entry this session attached to, and only while it is still the node's session:
        // the node may have registered again, or moved to a session on its renewed certificate.
        if (nodeId && core.registry.get(nodeId) === attached && attached?.send === ownSend) core.registry.sessionClosed(nodeId, reason);
        nodeId = "";
      };
      call.on("data", (msg: AgentMessage) => {
        if (msg.hello) {
          const id = msg.hello.nodeId;
          // Register checked it already; a hello that names another release is refused the same way
          // (an agent that announces none there is older than the announcement and was judged at Register).
          const refused = msg.hello.agentVersion ? agentVersionProblem(msg.hello.agentVersion, packageVersion()) : undefined;
          if (refused) {
            call.emit("error", toServiceError(failedPrecondition(refused)));
            return;
          }
          const principal = principalOf(call);
          if (principal?.kind === "node" && principal.nodeId !== id) {
            call.emit("error", toServiceError(permissionDenied(`this certificate belongs to node ${principal.nodeId}, not ${id}`)));
            return;
          }
          // Assignments of one dispatch round go out together, in messages of at most
          // SESSION_MESSAGE_BUDGET_BYTES (one larger task alone); a cancel never overtakes them.
          // With Kafka they go to the node's assignments partition instead (split the same way there).
          // A send that cannot be made safely (no key to seal to): the node goes DOWN, its tasks are placed elsewhere.
          const toKafka = (send: (sealTo: SealRecipient | undefined) => void) => {
            try {
              send(core.registry.get(id)?.sealTo);
            } catch (err) {
              log.error({ event: "assignments_refused", nodeId: id, err: (err as Error).message }, "assignments not sent; node marked down");
              core.registry.markDown(id, (err as Error).message);
            }
          };
          const assigns = new Coalescer<AssignmentIn>((items) => {
            if (routing) return toKafka((sealTo) => routing.sendAssignments(id, items, sealTo));
            for (const run of splitByBytes(items, assignmentBytes, SESSION_MESSAGE_BUDGET_BYTES)) call.write(run.length === 1 ? { assign: run[0]! } : { assigns: { items: run } });
          });
          const send = (m: SchedulerMessageIn) => {
            if (m.assign) assigns.push(m.assign);
            else {
              assigns.flush();
              if (m.cancel && routing) toKafka((sealTo) => routing.sendCancel(id, m.cancel!, sealTo));
              else call.write(m);
            }
          };
          // The same node's session on this entry (not a new Register): the agent moves to its renewed
          // certificate. The old session gets nothing new from here on, but stays open until the
          // agent ends it, so that the updates it wrote there before moving are all read.
          const previous = core.registry.get(id);
          const moving = previous !== undefined && previous.state !== "NODE_STATE_DOWN" && previous.send !== undefined && principal?.kind === "node";
          const node = core.registry.attachSession(id, send);
          if (!node) {
            call.emit("error", toServiceError(notFound(`unknown or expired node ${msg.hello.nodeId}: register again`)));
            return;
          }
          nodeId = node.id;
          attached = node;
          ownSend = send;
          // The agent's sign that this session is the node's now: one moving to a renewed
          // certificate ends its old session only then (agent/scheduler-link.ts).
          call.sendMetadata(new grpc.Metadata());
          if (principal?.kind === "node") {
            if (!moving) for (const other of [...(sessions.get(id) ?? [])]) other("another session of the same node opened");
            const own = (reason: string) => {
              sessions.get(id)?.delete(own);
              assigns.clear();
              call.emit("error", toServiceError(unauthenticated(reason)));
            };
            drop = own;
            sessions.set(id, (sessions.get(id) ?? new Set()).add(own));
            // The certificate this session was opened with is its credential for as long as it lasts.
            const notAfterMs = principal.certNotAfterMs ?? Infinity;
            if (Number.isFinite(notAfterMs)) expiry = callAt(notAfterMs, () => own(expiredMessage(id, notAfterMs)));
          }
          return;
        }
        if (!nodeId) {
          call.emit("error", toServiceError(invalidArgument("the first session message must be hello")));
          return;
        }
        if (msg.heartbeat) core.registry.heartbeat(nodeId, msg.heartbeat.load, msg.heartbeat.draining, msg.heartbeat.backingOff, msg.heartbeat.giveBack);
        else if (msg.update || msg.updates) {
          const from = nodeId;
          for (const update of msg.updates ? msg.updates.items : [msg.update!]) {
            core.onTaskUpdate(from, update).catch((err) =>
              log.error({ event: "update_failed", nodeId: from, err: (err as Error).message }, "could not record a task update"),
            );
          }
        }
      });
      call.on("end", () => {
        closed("session closed by the agent");
        call.end();
      });
      call.on("error", (err) => closed(`session error: ${err.message}`));
      call.on("cancelled", () => closed("session cancelled"));
    },

    FetchKernel: (call, callback) => {
      const id = call.request.kernelId;
      if (!isKernelId(id)) {
        callback(toServiceError(invalidArgument("kernel_id must be 64 lowercase hex digits")));
        return;
      }
      core.store.getKernel(id).then(
        (k) => (k ? callback(null, { info: kernelInfo(k), module: k.module }) : callback(toServiceError(notFound(`unknown kernel ${id}`)))),
        (err) => callback(toServiceError(err)),
      );
    },
  };
}
