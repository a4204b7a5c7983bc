// In-process TaskBus: same contract as the Kafka bus (ordered per node, at-least-once to the
// scheduler's handlers: a handler that throws gets the record again), nothing durable. Its
// agents' side (`agents`) is a MemoryAgentBus (common/agent-bus.ts) over these same queues.
import type { AssignmentIn, CancellationIn, SchedulerMessage } from "../../common/types.js";
import { decodeSchedulerMessage, decodeSubmission, encodeAssignments, encodeCancel, encodeSubmission } from "../../common/kafka-wire.js";
import { MemoryAgentBus, type AgentBus } from "../../common/agent-bus.js";
import { fromJobSubmission, toJobSubmission, type BusHandlers, type SubmissionRecord, type TaskBus, type TaskEventRecord } from "./bus.js";

type Item = { kind: "submission"; rec: SubmissionRecord } | { kind: "event"; rec: TaskEventRecord };

export class MemoryBus implements TaskBus {
  readonly kind = "memory";
  private handlers?: BusHandlers;
  private readonly backlog: Item[] = [];
  private readonly subscribers = new Map<string, (msg: SchedulerMessage) => void>();
  /** What was published for a node before it subscribed, in order. */
  private readonly pendingForNode = new Map<string, SchedulerMessage[]>();
  private pumping?: Promise<void>;

  /** The agents' end of this bus (in-process agents, the contract tests); its code is in common/agent-bus.ts. */
  readonly agents: AgentBus = new MemoryAgentBus({
    attach: (nodeId, deliver) => {
      this.subscribers.set(nodeId, deliver);
      for (const msg of this.pendingForNode.get(nodeId) ?? []) queueMicrotask(() => deliver(msg));
      this.pendingForNode.delete(nodeId);
      return () => void this.subscribers.delete(nodeId);
    },
    deliverUpdates: (nodeId, updates) => {
      for (const update of updates) this.enqueue({ kind: "event", rec: { nodeId, update } });
    },
    deliverLoad: (sample) => this.handlers?.load(sample),
    flush: () => this.flush(),
  });

  async appendSubmission(rec: SubmissionRecord): Promise<void> {
    // Through the same encoding as Kafka, so both buses deliver the same shape.
    this.enqueue({ kind: "submission", rec: fromJobSubmission(decodeSubmission(encodeSubmission(toJobSubmission(rec)))) });
  }

  publishAssignments(nodeId: string, items: AssignmentIn[]): void {
    // Through the same encoding as Kafka, so both buses deliver the same shape.
    this.toNode(nodeId, decodeSchedulerMessage(encodeAssignments(items)));
  }

  publishCancel(nodeId: string, cancel: CancellationIn): void {
    this.toNode(nodeId, decodeSchedulerMessage(encodeCancel(cancel)));
  }

  private toNode(nodeId: string, msg: SchedulerMessage): void {
    const sub = this.subscribers.get(nodeId);
    if (sub) queueMicrotask(() => sub(msg));
    else {
      const list = this.pendingForNode.get(nodeId) ?? [];
      list.push(msg);
      this.pendingForNode.set(nodeId, list);
    }
  }

  async consume(handlers: BusHandlers): Promise<void> {
    this.handlers = handlers;
    this.pump();
  }

  private enqueue(item: Item): void {
    this.backlog.push(item);
    this.pump();
  }

  private pump(): void {
    if (this.pumping || !this.handlers) return;
    const h = this.handlers;
    this.pumping = (async () => {
      while (this.backlog.length > 0) {
        const item = this.backlog[0]!;
        try {
          if (item.kind === "submission") await h.submission(item.rec);
          else await h.event(item.rec);
          this.backlog.shift(); // "commit" only after the handler recorded it
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    })().finally(() => {
      this.pumping = undefined;
      if (this.backlog.length > 0) this.pump();
    });
  }

  async flush(): Promise<void> {
    while (this.pumping) await this.pumping;
  }

  async close(): Promise<void> {
    this.handlers = undefined;
    this.subscribers.clear();
  }
}
