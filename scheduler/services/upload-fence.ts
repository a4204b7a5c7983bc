// The UploadOutput calls under way, by node, so that a node the scheduler gives up on has its
// uploads ended at once: declared lost (its tasks are re-run elsewhere, so an upload of theirs is
// not needed; a paused agent would otherwise hold its partial upload in the store until its own
// 120 s deadline) or removed by an admin (its certificate revoked: refused on its next piece,
// not only on its next call). Each ended upload is dropped from the store by its handler.
import { EventEmitter } from "node:events";
import { status } from "@grpc/grpc-js";
import { DistributeXError } from "../../common/errors.js";

type Abort = (err: DistributeXError) => void;

export class UploadFence {
  private readonly byNode = new Map<string, Set<Abort>>();

  /**
   * Ends a node's uploads on the registry's "down" and the security's "node_removed" events
   * (either may be absent: tests build the service without them).
   */
  constructor(registry?: EventEmitter, security?: EventEmitter) {
    registry?.on("down", (node: { id: string }, reason: string) =>
      this.endAll(node.id, new DistributeXError(status.ABORTED, `node ${node.id} was declared lost (${reason}); its tasks are re-run elsewhere and this upload was dropped; not retryable`)),
    );
    security?.on("node_removed", (nodeId: string) =>
      this.endAll(nodeId, new DistributeXError(status.UNAUTHENTICATED, `the certificate of node ${nodeId} was revoked (the node was removed); this upload was dropped; not retryable`)),
    );
  }

  /** Registers an upload of `nodeId`: `abort` ends it. Returns the function that unregisters it. */
  add(nodeId: string, abort: Abort): () => void {
    let set = this.byNode.get(nodeId);
    if (!set) this.byNode.set(nodeId, (set = new Set()));
    set.add(abort);
    return () => {
      set.delete(abort);
      if (set.size === 0 && this.byNode.get(nodeId) === set) this.byNode.delete(nodeId);
    };
  }

  /** Uploads under way, all nodes together (for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const s of this.byNode.values()) n += s.size;
    return n;
  }

  private endAll(nodeId: string, err: DistributeXError): void {
    for (const abort of this.byNode.get(nodeId) ?? []) abort(err);
  }
}
