// The pipelining policy as pure functions: how deep a worker's pipeline may be for a kernel's
// measured run time, when a busy worker is topped up, and which task it may take.
import { describe, expect, it } from "vitest";
import { depthForRunMs, EWMA_ALPHA, KernelDepths, lowWater, mayTake, MIN_RUN_MS, nextRunMsAverage, PIPELINE_BUDGET_MS, type WorkerPipeline } from "../../agent/pool/pipelining.js";

const worker = (held: number, kernelsHeld: string[], refill = true): WorkerPipeline => ({ held, refill, kernelsHeld });

describe("pipelining policy", () => {
  it("averages run times, the newest weighted by EWMA_ALPHA; a timeout never lowers the average below itself", () => {
    expect(nextRunMsAverage(undefined, 3)).toBe(3);
    expect(nextRunMsAverage(1, 2)).toBeCloseTo(1 + EWMA_ALPHA);
    expect(nextRunMsAverage(0.01, 1000, true)).toBe(1000);
    expect(nextRunMsAverage(5000, 1000, true)).toBeCloseTo(5000 - EWMA_ALPHA * 4000);
  });

  it("fits as many tasks as PIPELINE_BUDGET_MS of expected run time allows, within 1..maxDepth", () => {
    expect(depthForRunMs(PIPELINE_BUDGET_MS / 8, 64)).toBe(8);
    expect(depthForRunMs(PIPELINE_BUDGET_MS, 64)).toBe(1);
    expect(depthForRunMs(PIPELINE_BUDGET_MS * 10, 64)).toBe(1); // slow kernels: one task per worker
    expect(depthForRunMs(0, 64)).toBe(Math.min(64, Math.floor(PIPELINE_BUDGET_MS / MIN_RUN_MS)));
    expect(depthForRunMs(0, 16)).toBe(16);
  });

  it("tops a busy worker up only at half the smallest depth among the kernels it holds", () => {
    const depths: Record<string, number> = { tiny: 32, small: 6 };
    const depthOf = (k: string) => depths[k] ?? 1;
    expect(lowWater([], depthOf, 64)).toBe(32);
    expect(lowWater(["tiny"], depthOf, 64)).toBe(16);
    expect(lowWater(["tiny", "small"], depthOf, 64)).toBe(3);
    expect(lowWater(["unmeasured"], depthOf, 64)).toBe(0);
  });

  it("lets an idle worker take anything, and a busy one only tiny tasks within every held kernel's depth", () => {
    const depths: Record<string, number> = { tiny: 8, small: 3 };
    const depthOf = (k: string) => depths[k] ?? 1;
    expect(mayTake(worker(0, []), "unmeasured", true, depthOf, 64)).toBe(true);
    expect(mayTake(worker(2, ["tiny"]), "tiny", false, depthOf, 64)).toBe(true);
    expect(mayTake(worker(2, ["tiny"]), "tiny", false, depthOf, 2)).toBe(false); // maxDepth
    expect(mayTake(worker(2, ["tiny"], false), "tiny", false, depthOf, 64)).toBe(false); // not below low water at pump start
    expect(mayTake(worker(2, ["tiny"]), "tiny", true, depthOf, 64)).toBe(false); // a transferred input waits for an idle worker
    expect(mayTake(worker(2, ["tiny"]), "unmeasured", false, depthOf, 64)).toBe(false);
    expect(mayTake(worker(3, ["tiny", "small"]), "tiny", false, depthOf, 64)).toBe(false); // small is at its depth
    expect(mayTake(worker(2, ["tiny", "small"]), "tiny", false, depthOf, 64)).toBe(true);
  });

  it("KernelDepths: 1 until measured, then the depth of the average", () => {
    const k = new KernelDepths(64);
    expect(k.depthOf("echo")).toBe(1);
    k.noteRun("echo", PIPELINE_BUDGET_MS / 10);
    expect(k.depthOf("echo")).toBe(10);
    k.noteRun("echo", 60_000, true); // a timeout
    expect(k.depthOf("echo")).toBe(1);
  });
});
