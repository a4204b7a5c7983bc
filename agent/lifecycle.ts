// One lifecycle state per agent (common/lifecycle.ts keeps it):
//   starting → connecting → ready ⇄ connecting (session lost, reconnecting)
//   any of those → draining → stopping → stopped
// Transitions the table does not allow (a reconnect that completes while the agent drains) are
// ignored.
import { Lifecycle } from "../common/lifecycle.js";
import type { Logger } from "../common/logger.js";

export type AgentState = "starting" | "connecting" | "ready" | "draining" | "stopping" | "stopped";

export class AgentLifecycle extends Lifecycle<AgentState> {
  constructor(log: Logger) {
    super(
      {
        daemon: "agent",
        initial: "starting",
        allowed: {
          starting: ["connecting", "draining"],
          connecting: ["ready", "draining"],
          ready: ["connecting", "draining"],
          draining: ["stopping"],
          stopping: ["stopped"],
          stopped: [],
        },
        notReady: {
          starting: "starting: profiling the host",
          connecting: "connecting: not connected to the scheduler",
          draining: "draining",
          stopping: "stopping",
          stopped: "stopped",
        },
      },
      log,
    );
  }

  /** Whether the agent has begun to stop (the heartbeat's draining flag). */
  get draining(): boolean {
    return this.state === "draining" || this.state === "stopping" || this.state === "stopped";
  }
}
