// The agents' side of the task bus: what an agent on the bus does (read its assignments and the
// cancels behind them, send task updates and load samples). The scheduler's side is TaskBus
// (scheduler/backends/bus.ts); the scheduler never calls these. Implementations: the Kafka one
// (common/kafka-agent-bus.ts, over the same KafkaAgentLink a remote agent uses) and the
// in-process one below (MemoryAgentBus, over the memory bus's queues: MemoryBus.agents), for
// in-process agents and the contract tests.
import { assignmentsOf, decodeUpdates, encodeUpdates, type LoadSample } from "./kafka-wire.js";
import type { KafkaRouteShape } from "./kafka-agent-link.js";
import type { Assignment, Cancellation, SchedulerMessage, TaskUpdate, TaskUpdateIn } from "./types.js";

export interface AgentBus {
  /** Assignments and cancels for nodeId, in the order the scheduler published them. */
  subscribeAssignments(nodeId: string, onAssign: (a: Assignment) => void, onCancel?: (c: Cancellation) => void): Promise<{ close(): Promise<void> }>;
  /** Task updates back to the scheduler (one record per batch, split only when large). */
  publishEvents(nodeId: string, updates: TaskUpdateIn[]): void;
  publishLoad(sample: LoadSample): void;
  /** Resolves once everything queued has been written. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** Where an agent on another machine reads its assignments and writes its updates (Register's answer). */
export interface RemoteAgentRoutes {
  routeFor(nodeId: string): KafkaRouteShape;
}

/**
 * What an in-process bus hands its agents' side (MemoryAgentBus): records as they travel (the
 * scheduler's messages for a node, task updates and load samples back). The bus keeps the queues.
 */
export interface InProcessAgentPort {
  /** Delivers the node's messages to `deliver` from now on, those queued before it first. Returns the detach. */
  attach(nodeId: string, deliver: (msg: SchedulerMessage) => void): () => void;
  deliverUpdates(nodeId: string, updates: TaskUpdate[]): void;
  deliverLoad(sample: LoadSample): void;
  flush(): Promise<void>;
}

/** The agents' side of an in-process bus, through the same encodings as Kafka, so both buses deliver the same shapes. */
export class MemoryAgentBus implements AgentBus {
  constructor(private readonly port: InProcessAgentPort) {}

  async subscribeAssignments(nodeId: string, onAssign: (a: Assignment) => void, onCancel?: (c: Cancellation) => void): Promise<{ close(): Promise<void> }> {
    const detach = this.port.attach(nodeId, (msg) => {
      for (const a of assignmentsOf(msg)) onAssign(a);
      if (msg.cancel) onCancel?.(msg.cancel);
    });
    return { close: async () => detach() };
  }

  publishEvents(nodeId: string, updates: TaskUpdateIn[]): void {
    this.port.deliverUpdates(nodeId, decodeUpdates(encodeUpdates(updates)));
  }

  publishLoad(sample: LoadSample): void {
    this.port.deliverLoad(sample);
  }

  flush(): Promise<void> {
    return this.port.flush();
  }

  async close(): Promise<void> {}
}
