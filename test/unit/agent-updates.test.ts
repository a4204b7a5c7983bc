// What an agent sends back per turn: a RUNNING made moot by its own final update is left out.
import { describe, expect, it } from "vitest";
import { dropSupersededRunning } from "../../agent/agent.js";
import type { TaskUpdateIn } from "../../common/types.js";

const u = (taskIndex: number, state: string, attempt = 1): TaskUpdateIn => ({ jobId: "job-a", taskIndex, attempt, state: state as TaskUpdateIn["state"] });

describe("dropSupersededRunning", () => {
  it("leaves out a RUNNING whose final update of the same attempt is in the batch", () => {
    const batch = [u(0, "TASK_STATE_RUNNING"), u(1, "TASK_STATE_RUNNING"), u(0, "TASK_STATE_SUCCEEDED"), u(2, "TASK_STATE_FAILED")];
    expect(dropSupersededRunning(batch)).toEqual([u(1, "TASK_STATE_RUNNING"), u(0, "TASK_STATE_SUCCEEDED"), u(2, "TASK_STATE_FAILED")]);
  });

  it("keeps a RUNNING of another attempt, and returns a batch without RUNNING as it is", () => {
    const mixed = [u(0, "TASK_STATE_RUNNING", 2), u(0, "TASK_STATE_CANCELLED", 1)];
    expect(dropSupersededRunning(mixed)).toEqual(mixed);
    const finals = [u(0, "TASK_STATE_SUCCEEDED"), u(1, "TASK_STATE_SUCCEEDED")];
    expect(dropSupersededRunning(finals)).toBe(finals);
  });
});
