// docker-compose.yml's monitoring, checked without Docker: every target its Prometheus scrapes is
// a compose service whose daemon serves /metrics there on all interfaces; the alerting rules are
// mounted where the config loads them (and promtool accepts config + rules); Grafana is provisioned
// with a datasource pointing at the compose Prometheus and the dashboard folder its provider reads.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../../common/paths.js";
import { requireBinary } from "../../helpers/monitoring.js";

interface Service {
  command?: string[];
  volumes?: string[];
}
const root = repoRoot();
const compose = parse(readFileSync(path.join(root, "docker-compose.yml"), "utf8")) as { services: Record<string, Service> };
const services = compose.services;

/** Container path -> repository path, from a service's "./host:/container[:ro]" bind mounts. */
function mounts(service: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of services[service]?.volumes ?? []) {
    const [host, container] = v.split(":");
    if (host?.startsWith("./") && container) out.set(container, path.join(root, host));
  }
  return out;
}

/** The repository file behind a path inside a service's container, if a bind mount covers it. */
function hostPath(service: string, containerPath: string): string | undefined {
  for (const [c, h] of mounts(service)) {
    if (containerPath === c) return h;
    if (containerPath.startsWith(c + "/")) return path.join(h, containerPath.slice(c.length + 1));
  }
  return undefined;
}

const flag = (cmd: string[], name: string) => {
  const i = cmd.indexOf(name);
  return i >= 0 ? cmd[i + 1] : undefined;
};

describe("docker-compose monitoring", () => {
  const promConfigFile = hostPath("prometheus", "/etc/prometheus/prometheus.yml");
  const promConfig = parse(readFileSync(promConfigFile!, "utf8")) as {
    rule_files: string[];
    scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
  };

  it("Prometheus scrapes only ports the compose daemons serve /metrics on, on all interfaces", () => {
    const targets = promConfig.scrape_configs.flatMap((j) => j.static_configs.flatMap((s) => s.targets.map((t) => ({ job: j.job_name, t }))));
    expect(targets.length).toBe(3);
    for (const { t } of targets) {
      const [host, port] = t.split(":");
      const cmd = services[host!]?.command;
      expect(cmd, `${t}: no compose service ${host}`).toBeDefined();
      expect(flag(cmd!, "--admin-port"), `${host} must serve /metrics on ${port}`).toBe(port);
      expect(flag(cmd!, "--admin-host"), `${host} must listen beyond its loopback`).toBe("0.0.0.0");
    }
    // The rules' DistxSchedulerDown / DistxAgentDown select these job names.
    expect(new Set(targets.map((x) => x.job))).toEqual(new Set(["distx-scheduler", "distx-agent"]));
  });

  it("loads the alerting rules, and promtool accepts the config with them", () => {
    expect(promConfig.rule_files.length).toBeGreaterThan(0);
    const dir = mkdtempSync(path.join(os.tmpdir(), "distx-compose-prom-"));
    const rules = promConfig.rule_files.map((f) => {
      const h = hostPath("prometheus", f);
      expect(h && existsSync(h), `${f} is not mounted into the prometheus container`).toBe(true);
      return h!;
    });
    // The same config with the container's rule paths mapped back to the repository's files.
    const text = readFileSync(promConfigFile!, "utf8").replace(/^(\s*-\s*)(\/etc\/prometheus\/rules\/\S+)$/gm, (_m, p: string, f: string) => p + hostPath("prometheus", f));
    writeFileSync(path.join(dir, "prometheus.yml"), text);
    const r = spawnSync(requireBinary("promtool", "prometheus"), ["check", "config", path.join(dir, "prometheus.yml")], { encoding: "utf8" });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    for (const f of rules) expect(r.stdout + r.stderr).toContain(path.basename(f));
  });

  it("provisions Grafana with the compose Prometheus and the dashboard folder", () => {
    const ds = parse(readFileSync(hostPath("grafana", "/etc/grafana/provisioning/datasources/distributex.yml")!, "utf8")) as { datasources: { url: string; uid: string }[] };
    expect(ds.datasources[0]!.url).toBe("http://prometheus:9090");
    expect(ds.datasources[0]!.uid).toBe("distx-prometheus");
    const prov = parse(readFileSync(hostPath("grafana", "/etc/grafana/provisioning/dashboards/distributex.yml")!, "utf8")) as { providers: { options: { path: string } }[] };
    const folder = hostPath("grafana", prov.providers[0]!.options.path);
    expect(folder && existsSync(path.join(folder, "distributex.json")), "the dashboard provider's folder is not mounted").toBe(true);
  });
});
