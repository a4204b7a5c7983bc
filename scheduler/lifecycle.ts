// One lifecycle state per scheduler (common/lifecycle.ts keeps it), the states start() and
// stop() really pass through:
//   starting → [waiting-for-backends ⇄ standby] → restoring → active → draining → stopping → stopped
// waiting-for-backends: Redis cannot grant the lease; standby: another scheduler holds it;
// restoring: the lease is ours, jobs are being loaded, nothing listens yet. A step-down after
// lease loss goes active → stopping (nothing drains: the new leader owns the jobs).
import { Lifecycle } from "../common/lifecycle.js";
import type { Logger } from "../common/logger.js";

export type SchedulerState = "starting" | "waiting-for-backends" | "standby" | "restoring" | "active" | "draining" | "stopping" | "stopped";

export class SchedulerLifecycle extends Lifecycle<SchedulerState> {
  constructor(log: Logger) {
    super(
      {
        daemon: "scheduler",
        initial: "starting",
        allowed: {
          starting: ["waiting-for-backends", "standby", "restoring", "stopping"],
          "waiting-for-backends": ["standby", "restoring", "stopping"],
          standby: ["waiting-for-backends", "restoring", "stopping"],
          restoring: ["active", "stopping"],
          active: ["draining", "stopping"],
          draining: ["stopping"],
          stopping: ["stopped"],
          stopped: [],
        },
        notReady: {
          starting: "starting",
          "waiting-for-backends": "waiting for backends: Redis cannot grant the scheduler lease",
          standby: "standby: another scheduler holds the lease",
          restoring: "restoring: loading jobs",
          draining: "draining: takes no new jobs",
          stopping: "stopping",
          stopped: "stopped",
        },
      },
      log,
    );
  }

  /** Whether SubmitJob takes new jobs: until the drain begins. */
  get acceptsJobs(): boolean {
    return this.state !== "draining" && this.state !== "stopping" && this.state !== "stopped";
  }
}
