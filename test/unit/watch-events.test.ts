// The grouping and order of a WatchJob stream's live events (scheduler/services/watch-events.ts).
import { describe, expect, it } from "vitest";
import type { JobEventIn } from "../../common/types.js";
import { WatchEventSender } from "../../scheduler/services/watch-events.js";

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
const snapshot = (state: string, succeeded = 0): JobEventIn => ({ jobId: "j", atMs: 0, job: { id: "j", state, counts: { succeeded } } as never });
const task = (taskIndex: number, state: string): JobEventIn => ({ jobId: "j", atMs: 0, task: { taskIndex, state } as never });

function sender(finalOnly: boolean) {
  const written: JobEventIn[] = [];
  let ended = 0;
  const s = new WatchEventSender("j", finalOnly, { write: (ev) => void written.push(ev), isDropped: false }, () => void ended++);
  const kinds = () => written.map((ev) => (ev.job ? `job:${ev.job.state}` : ev.tasks ? `tasks:${(ev.tasks.items ?? []).map((t) => t.taskIndex).join(",")}` : `task:${ev.task!.taskIndex}:${ev.task!.state}`));
  return { s, kinds, ended: () => ended };
}

describe("WatchJob live events", () => {
  it("a task that starts and ends in one turn: its outcome and the final snapshot only, no RUNNING snapshot", async () => {
    const w = sender(true);
    w.s.send(snapshot("JOB_STATE_RUNNING"));
    w.s.send(task(0, "TASK_STATE_RUNNING"));
    w.s.send(task(0, "TASK_STATE_SUCCEEDED"));
    w.s.send(snapshot("JOB_STATE_SUCCEEDED", 1));
    await turn();
    expect(w.kinds()).toEqual(["tasks:0", "job:JOB_STATE_SUCCEEDED"]);
    expect(w.ended()).toBe(1);
  });

  it("snapshots of one turn: only the latest is sent, after the outcomes that came before it", async () => {
    const w = sender(true);
    w.s.send(task(0, "TASK_STATE_SUCCEEDED"));
    w.s.send(snapshot("JOB_STATE_RUNNING", 1));
    w.s.send(task(1, "TASK_STATE_SUCCEEDED"));
    w.s.send(snapshot("JOB_STATE_RUNNING", 2));
    expect(w.kinds()).toEqual(["tasks:0", "tasks:1"]);
    await turn();
    expect(w.kinds()).toEqual(["tasks:0", "tasks:1", "job:JOB_STATE_RUNNING"]);
    expect(w.ended()).toBe(0);
    // A snapshot alone in its turn is still sent.
    w.s.send(snapshot("JOB_STATE_RUNNING", 2));
    await turn();
    expect(w.kinds()).toHaveLength(4);
  });

  it("every event: a task event never overtakes an earlier snapshot", async () => {
    const w = sender(false);
    w.s.send(snapshot("JOB_STATE_RUNNING"));
    w.s.send(task(0, "TASK_STATE_RUNNING"));
    w.s.send(task(0, "TASK_STATE_SUCCEEDED"));
    w.s.send(snapshot("JOB_STATE_SUCCEEDED", 1));
    await turn();
    expect(w.kinds()).toEqual(["job:JOB_STATE_RUNNING", "task:0:TASK_STATE_RUNNING", "task:0:TASK_STATE_SUCCEEDED", "job:JOB_STATE_SUCCEEDED"]);
  });

  it("sends nothing pending after the stream is gone", async () => {
    const w = sender(true);
    w.s.send(task(0, "TASK_STATE_SUCCEEDED"));
    w.s.send(snapshot("JOB_STATE_RUNNING", 1));
    const before = w.kinds().length;
    w.s.send(task(1, "TASK_STATE_SUCCEEDED"));
    w.s.stop();
    await turn();
    await turn();
    expect(w.kinds()).toHaveLength(before);
  });
});
