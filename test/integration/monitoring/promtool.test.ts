// The shipped Prometheus config and rules pass promtool, and the alert rules behave as their
// unit tests (deploy/prometheus/rules/distx-alerts.test.yml) say.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { deployDir, requireBinary } from "../../helpers/monitoring.js";

const promtool = (...args: string[]) => {
  const r = spawnSync(requireBinary("promtool", "prometheus"), args, { encoding: "utf8", cwd: deployDir("prometheus") });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
};

describe("deploy/prometheus", () => {
  it("promtool check config accepts prometheus.yml (and the rule files it loads)", () => {
    const r = promtool("check", "config", "prometheus.yml");
    expect(r.out).toContain("SUCCESS");
    expect(r.code, r.out).toBe(0);
  });

  it("promtool check rules accepts the alert rules", () => {
    const r = promtool("check", "rules", "rules/distx-alerts.yml");
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/SUCCESS: \d+ rules found/);
  });

  it("promtool test rules: every alert fires (and stays quiet) as the unit tests expect", () => {
    const r = promtool("test", "rules", "rules/distx-alerts.test.yml");
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain("SUCCESS");
  });
});
