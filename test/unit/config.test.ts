import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { agentConfigSchema, ConfigError, loadConfig, schedulerConfigSchema } from "../../common/config.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "distx-config-"));

describe("configuration", () => {
  it("layers defaults < file < env < flags", () => {
    const file = path.join(tmp, "ok.json");
    writeFileSync(file, JSON.stringify({ agent: { workers: 3, memoryLimitMb: 64, labels: { zone: "a" } } }));
    const c = loadConfig(agentConfigSchema, { file, section: "agent", env: { DISTX_WORKERS: "5" }, flags: { scheduler: "10.0.0.1:9000" } });
    expect(c.workers).toBe(5);
    expect(c.memoryLimitMb).toBe(64);
    expect(c.scheduler).toBe("10.0.0.1:9000");
    expect(c.labels).toEqual({ zone: "a" });
    expect(c.calibrate).toBe(true);
  });

  it("bounds the kernel workers' memory pool: 256 MiB unless set, 0 keeps none, never negative", () => {
    expect(loadConfig(agentConfigSchema, { section: "agent", env: {} }).memoryPoolMb).toBe(256);
    expect(loadConfig(agentConfigSchema, { section: "agent", env: { DISTX_MEMORY_POOL_MB: "0" } }).memoryPoolMb).toBe(0);
    expect(() => loadConfig(agentConfigSchema, { section: "agent", env: { DISTX_MEMORY_POOL_MB: "-1" } })).toThrow(/memoryPoolMb/);
  });

  it("bounds the agent's recycled output buffers: 64 MiB unless set, 0 keeps none, never negative nor fractional", () => {
    expect(loadConfig(agentConfigSchema, { section: "agent", env: {} }).outputPoolMb).toBe(64);
    expect(loadConfig(agentConfigSchema, { section: "agent", env: { DISTX_OUTPUT_POOL_MB: "0" } }).outputPoolMb).toBe(0);
    expect(() => loadConfig(agentConfigSchema, { section: "agent", env: { DISTX_OUTPUT_POOL_MB: "-1" } })).toThrow(/outputPoolMb/);
    expect(() => loadConfig(agentConfigSchema, { section: "agent", env: { DISTX_OUTPUT_POOL_MB: "1.5" } })).toThrow(/outputPoolMb/);
  });

  it("parses labels and booleans from env", () => {
    const c = loadConfig(agentConfigSchema, { section: "agent", env: { DISTX_LABELS: "zone=b,tier=gpu", DISTX_CALIBRATE: "false" } });
    expect(c.labels).toEqual({ zone: "b", tier: "gpu" });
    expect(c.calibrate).toBe(false);
  });

  it("names the bad field, the value and where it came from", () => {
    const attempt = () => loadConfig(agentConfigSchema, { section: "agent", env: { DISTX_WORKERS: "many" }, flags: { scheduler: "nowhere" } });
    expect(attempt).toThrow(ConfigError);
    try {
      attempt();
    } catch (err) {
      const msg = (err as ConfigError).message;
      expect(msg).toMatch(/workers: must be a number.*"many" from env DISTX_WORKERS/);
      expect(msg).toMatch(/scheduler: must be host:port.*"nowhere" from flag --scheduler/);
      expect((err as ConfigError).issues.map((i) => i.field).sort()).toEqual(["scheduler", "workers"]);
    }
  });

  it("rejects unknown settings in a file and unreadable files", () => {
    const file = path.join(tmp, "typo.json");
    writeFileSync(file, JSON.stringify({ scheduler: { prot: 7070 } }));
    expect(() => loadConfig(schedulerConfigSchema, { file, section: "scheduler", env: {} })).toThrow(/unknown setting\(s\): prot/);
    expect(() => loadConfig(schedulerConfigSchema, { file: path.join(tmp, "missing.json"), section: "scheduler", env: {} })).toThrow(/cannot read config file/);
    expect(() => loadConfig(schedulerConfigSchema, { section: "scheduler", env: { DISTX_PORT: "70000" } })).toThrow(/port: must be ≤ 65535/);
  });
});
