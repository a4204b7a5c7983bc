// What the agent's scheduler link (scheduler-link.ts) hands to the agent and asks of it, and the
// errors that end its connect loop.
import type { Assignment, Cancellation, TaskUpdateIn } from "../common/types.js";

/** The scheduler refused this agent for good (FAILED_PRECONDITION: an incompatible version); retrying cannot help. */
export class AgentRefusedError extends Error {
  override readonly name = "AgentRefusedError";
}

/** What the link hands to the agent, and asks of it. */
export interface LinkHandlers {
  assign(a: Assignment): void;
  cancel(c: Cancellation): void;
  /** Time for a heartbeat (at once when a session opens, then every interval the scheduler asked for). */
  heartbeat(): void;
  /** Registered and the session is open (at start, and after each reconnect). */
  connected(): void;
  /** The scheduler refused this agent for good (after a reconnect; at start connect() throws it). */
  refused(err: AgentRefusedError): void;
  /**
   * The session ended while the link was not closing: the scheduler re-places whatever this node
   * held, and the link is reconnecting. `updatesDeliverable` says whether updates still queued
   * can go (over Kafka they can; on the session they cannot).
   */
  sessionLost(reason: string, updatesDeliverable: boolean): void;
  /** Updates sent over Kafka that the broker acknowledged. */
  delivered(updates: TaskUpdateIn[]): void;
  /** Updates sent over Kafka that the broker refused for good, and what went instead (one for one). */
  replaced(updates: TaskUpdateIn[], instead: TaskUpdateIn[]): void;
  /** Updates sent on the session are encoded and written (or dropped): nothing here reads them any more. */
  written(updates: TaskUpdateIn[]): void;
}

export class AgentStoppedError extends Error {
  constructor() {
    super("agent stopped");
  }
}
