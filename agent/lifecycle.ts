// One lifecycle state per agent, instead of booleans that must agree with each other:
//   starting → connecting → ready ⇄ connecting (session lost, reconnecting)
//   any of those → draining → stopping → stopped
// Each transition is logged; /readyz answers from the state; transitions the table does not
// allow (a reconnect that completes while the agent drains) are ignored.
import type { Logger } from "../common/logger.js";

export type AgentState = "starting" | "connecting" | "ready" | "draining" | "stopping" | "stopped";

const ALLOWED: Readonly<Record<AgentState, readonly AgentState[]>> = {
  starting: ["connecting", "draining"],
  connecting: ["ready", "draining"],
  ready: ["connecting", "draining"],
  draining: ["stopping"],
  stopping: ["stopped"],
  stopped: [],
};

/** Why /readyz says no, per state (ready says yes). */
const NOT_READY: Readonly<Record<Exclude<AgentState, "ready">, string>> = {
  starting: "starting: profiling the host",
  connecting: "connecting: not connected to the scheduler",
  draining: "draining",
  stopping: "stopping",
  stopped: "stopped",
};

export class AgentLifecycle {
  private current: AgentState = "starting";

  constructor(private readonly log: Logger) {}

  get state(): AgentState {
    return this.current;
  }

  /** Whether the agent has begun to stop (the heartbeat's draining flag). */
  get draining(): boolean {
    return this.current === "draining" || this.current === "stopping" || this.current === "stopped";
  }

  /** Moves to `next` when the table allows it; returns whether it did. */
  to(next: AgentState, detail?: Record<string, unknown>): boolean {
    const from = this.current;
    if (!ALLOWED[from].includes(next)) return false;
    this.current = next;
    this.log.info({ event: "agent_state", from, to: next, ...detail }, `agent ${next}`);
    return true;
  }

  /** What /readyz reports: undefined when ready, else why not. */
  notReady(): string | undefined {
    return this.current === "ready" ? undefined : NOT_READY[this.current];
  }
}
