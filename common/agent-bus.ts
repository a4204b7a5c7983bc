// The agents' side of the task bus: what an agent on the bus does (read its assignments and the
// cancels behind them, send task updates and load samples). The scheduler's side is TaskBus
// (scheduler/backends/bus.ts); the scheduler never calls these. Implementations: the Kafka one
// (common/kafka-agent-bus.ts, over the same KafkaAgentLink a remote agent uses) and the
// in-process one of the memory bus (MemoryBus.agents), for in-process agents and the contract tests.
import type { LoadSample } from "./kafka-wire.js";
import type { KafkaRouteShape } from "./kafka-agent-link.js";
import type { Assignment, Cancellation, TaskUpdateIn } from "./types.js";

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
