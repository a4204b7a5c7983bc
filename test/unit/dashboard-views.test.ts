// The dashboard's drill-down answers stay bounded whatever the job's size: a job of 10^5 tasks
// is aggregated (counts, a capped failure list, per-node counts, a histogram), never listed;
// the alert list keeps a bounded set of groups (name + node) with counts.
import { describe, expect, it } from "vitest";
import { createLogger } from "../../common/logger.js";
import { AlertBus } from "../../scheduler/alerts/bus.js";
import { AlertGroups } from "../../scheduler/dashboard/alert-groups.js";
import { jobDetail } from "../../scheduler/dashboard/views.js";
import { emptyCounts, type JobRecord, type TaskRecord } from "../../scheduler/model.js";
import { NodeRegistry } from "../../scheduler/registry.js";

function bigJob(n: number): JobRecord {
  const counts = emptyCounts();
  const tasks: TaskRecord[] = [];
  for (let i = 0; i < n; i++) {
    const state = i % 10 === 0 ? "TASK_STATE_FAILED" : i % 7 === 0 ? "TASK_STATE_RUNNING" : "TASK_STATE_SUCCEEDED";
    counts[state]++;
    tasks.push({ index: i, state, attempt: 1, nodeId: `node-${i % 500}`, input: undefined, runMs: 1 + (i % 3000), ...(state === "TASK_STATE_FAILED" ? { error: { code: i % 20 ? "TRAP" : "TIMEOUT", message: "x".repeat(2000) } } : {}) });
  }
  return {
    id: "job-00000000-0000-0000-0000-000000000000", name: "big", kernelId: "k", state: "JOB_STATE_RUNNING", priority: 0, timeoutMs: 0, maxAttempts: 1,
    needs: { cores: 1, memoryBytes: 0, gpu: false, nodeSelector: {}, kind: "KERNEL_KIND_WASM" },
    submittedAtMs: 1, startedAtMs: 2, finishedAtMs: 0, retries: 0, counts, tasks,
  };
}

describe("dashboard views", () => {
  it("aggregates a job of 10^5 tasks into a small answer", () => {
    const d = jobDetail(bigJob(100_000), new NodeRegistry({ agentTimeoutMs: 60_000, prefetchPerWorker: 1 }));
    const bytes = JSON.stringify(d).length;
    expect(bytes).toBeLessThan(40_000);
    expect(d.counts).toMatchObject({ failed: 10_000, running: 12_857, succeeded: 77_143 });
    expect(d.failures.length).toBe(50);
    expect(d.failuresTotal).toBe(10_000);
    expect(d.failureCodes).toEqual({ TIMEOUT: 5000, TRAP: 5000 });
    expect(d.failures[0]!.message.length).toBeLessThanOrEqual(300);
    expect(d.placement.length).toBe(100);
    expect(d.nodesTotal).toBe(500);
    expect(d.histogram.counts.reduce((a, b) => a + b, 0)).toBe(87_143);
    expect(d.histogram.edgesMs.length).toBe(d.histogram.counts.length + 1);
    expect(d.runMs.max).toBe(3000);
  });

  it("groups alerts by name + node, counts them, and keeps a bounded set", () => {
    const bus = new AlertBus(createLogger("test", "error"));
    const groups = new AlertGroups(20, 5);
    bus.on("alert", (a) => groups.add(a));
    for (let i = 0; i < 10; i++) {
      bus.fire("AgentLost", "critical", "lost", { node: "a" });
      bus.resolve("AgentLost", { node: "a" });
    }
    for (let i = 0; i < 100; i++) bus.fire("PredictedSaturation", "warning", "soon", { node: `n${i}` });
    const v = groups.view();
    expect(v.total).toBe(20);
    expect(v.groups.length).toBe(5);
    // A storm of firing warnings pushed out the resolved page first.
    expect(v.groups.some((g) => g.name === "AgentLost")).toBe(false);
    expect(v.groups.every((g) => g.name === "PredictedSaturation" && g.count === 1 && g.firing === 1)).toBe(true);
    bus.fire("AgentLost", "critical", "lost again", { node: "a" });
    expect(groups.view().groups[0]).toMatchObject({ name: "AgentLost", node: "a", count: 1, firing: 1, lastSummary: "lost again" });
    bus.close();
  });
});
