// In-process TaskBus: same contract as the Kafka bus (ordered per node, at-least-once to the
// scheduler's handlers: a handler that throws gets the record again), nothing durable.
import type { Assignment, AssignmentIn, TaskUpdateIn } from "../../common/types.js";
import { decodeAssignments, decodeSubmission, decodeUpdates, encodeAssignments, encodeSubmission, encodeUpdates, type LoadSample } from "../../common/kafka-wire.js";
import { fromJobSubmission, toJobSubmission, type BusHandlers, type SubmissionRecord, type TaskBus, type TaskEventRecord } from "./bus.js";

type Item = { kind: "submission"; rec: SubmissionRecord } | { kind: "event"; rec: TaskEventRecord };

export class MemoryBus implements TaskBus {
  readonly kind = "memory";
  private handlers?: BusHandlers;
  private readonly backlog: Item[] = [];
  private readonly subscribers = new Map<string, (a: Assignment) => void>();
  private readonly pendingAssignments = new Map<string, Assignment[]>();
  private pumping?: Promise<void>;

  async appendSubmission(rec: SubmissionRecord): Promise<void> {
    // Through the same encoding as Kafka, so both buses deliver the same shape.
    this.enqueue({ kind: "submission", rec: fromJobSubmission(decodeSubmission(encodeSubmission(toJobSubmission(rec)))) });
  }

  publishAssignments(nodeId: string, items: AssignmentIn[]): void {
    // Through the same encoding as Kafka, so both buses deliver the same shape.
    for (const a of decodeAssignments(encodeAssignments(items))) {
      const sub = this.subscribers.get(nodeId);
      if (sub) queueMicrotask(() => sub(a));
      else {
        const list = this.pendingAssignments.get(nodeId) ?? [];
        list.push(a);
        this.pendingAssignments.set(nodeId, list);
      }
    }
  }

  async consume(handlers: BusHandlers): Promise<void> {
    this.handlers = handlers;
    this.pump();
  }

  async subscribeAssignments(nodeId: string, onAssign: (a: Assignment) => void): Promise<{ close(): Promise<void> }> {
    this.subscribers.set(nodeId, onAssign);
    for (const a of this.pendingAssignments.get(nodeId) ?? []) queueMicrotask(() => onAssign(a));
    this.pendingAssignments.delete(nodeId);
    return { close: async () => void this.subscribers.delete(nodeId) };
  }

  publishEvents(nodeId: string, updates: TaskUpdateIn[]): void {
    for (const update of decodeUpdates(encodeUpdates(updates))) this.enqueue({ kind: "event", rec: { nodeId, update } });
  }

  publishLoad(sample: LoadSample): void {
    this.handlers?.load(sample);
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
