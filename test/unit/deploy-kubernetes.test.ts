// deploy/kubernetes against Kubernetes' own OpenAPI schemas (kubernetes-models ships them, with a
// validator), plus what the schemas cannot know: the embedded daemon configs pass the daemons'
// own schemas, the scheduler runs as an active/standby pair behind a readiness gate, agents run
// as DaemonSets with GPU nodes selected by label, and every pod is unprivileged.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import { agentConfigSchema, loadConfig, schedulerConfigSchema } from "../../common/config.js";
import { repoRoot } from "../../common/paths.js";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";

type Doc = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [k: string]: unknown };
type Validatable = { validate(): void };
type ModelClass = new (data: unknown) => Validatable;

/** The kubernetes-models class for a document's apiVersion and kind. */
async function modelFor(doc: Doc): Promise<ModelClass | undefined> {
  const modules: Record<string, () => Promise<Record<string, unknown>>> = {
    "v1/Namespace": () => import("kubernetes-models/v1/Namespace"),
    "v1/ConfigMap": () => import("kubernetes-models/v1/ConfigMap"),
    "v1/Secret": () => import("kubernetes-models/v1/Secret"),
    "v1/Service": () => import("kubernetes-models/v1/Service"),
    "apps/v1/Deployment": () => import("kubernetes-models/apps/v1/Deployment"),
    "apps/v1/DaemonSet": () => import("kubernetes-models/apps/v1/DaemonSet"),
  };
  const load = modules[`${doc.apiVersion}/${doc.kind}`];
  return load ? ((await load())[doc.kind] as ModelClass) : undefined;
}

const dir = path.join(repoRoot(), "deploy", "kubernetes");
const docs: { file: string; doc: Doc }[] = readdirSync(dir)
  .filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")
  .flatMap((file) =>
    parseAllDocuments(readFileSync(path.join(dir, file), "utf8")).map((d) => {
      expect(d.errors, `${file}: YAML errors`).toEqual([]);
      return { file, doc: d.toJS() as Doc };
    }),
  );
const find = (kind: string, name: string): Doc => {
  const d = docs.find((x) => x.doc.kind === kind && x.doc.metadata.name === name);
  if (!d) throw new Error(`no ${kind} ${name} in deploy/kubernetes`);
  return d.doc;
};
// Manifests are free-form YAML: the schema test above is what types them.
type Loose = any;

describe("deploy/kubernetes", () => {
  it("every manifest passes Kubernetes' own schema for its kind", async () => {
    expect(docs.length).toBeGreaterThanOrEqual(8);
    for (const { file, doc } of docs) {
      const Model = await modelFor(doc);
      expect(Model, `${file}: ${doc.apiVersion} ${doc.kind} has no schema here`).toBeDefined();
      expect(() => new Model!(doc).validate(), `${file}: ${doc.kind} ${doc.metadata.name}`).not.toThrow();
    }
  });

  it("the validator is not vacuous: a wrong type and a missing required field are refused", async () => {
    const deployment = structuredClone(find("Deployment", "distx-scheduler")) as Loose;
    const Model = (await modelFor(deployment))!;
    deployment.spec.replicas = "two";
    expect(() => new Model(deployment).validate()).toThrow();
    const noSelector = structuredClone(find("DaemonSet", "distx-agent")) as Loose;
    delete noSelector.spec.selector;
    expect(() => new Model(noSelector).validate()).toThrow();
  });

  it("kustomization lists every manifest but the Secret examples", () => {
    const k = parseAllDocuments(readFileSync(path.join(dir, "kustomization.yaml"), "utf8"))[0]!.toJS() as { resources: string[] };
    const files = readdirSync(dir).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml" && !f.startsWith("secrets."));
    expect([...k.resources].sort()).toEqual(files.sort());
  });

  it("the daemons' configs in the ConfigMap pass the daemons' own schemas", () => {
    const cm = find("ConfigMap", "distx-config") as Loose;
    const tmp = mkdtempSync(path.join(os.tmpdir(), "distx-k8s-"));
    for (const [key, schema, section] of [
      ["scheduler.json", schedulerConfigSchema, "scheduler"],
      ["agent.json", agentConfigSchema, "agent"],
    ] as const) {
      const file = path.join(tmp, key);
      writeFileSync(file, cm.data[key]);
      expect(() => loadConfig(schema as typeof agentConfigSchema, { file, section, env: {} }), key).not.toThrow();
    }
  });

  it("schedulers: an active/standby pair behind /readyz, rolled one at a time, draining on stop", () => {
    const d = find("Deployment", "distx-scheduler") as Loose;
    expect(d.spec.replicas).toBeGreaterThanOrEqual(2);
    expect(d.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
    const c = d.spec.template.spec.containers[0];
    expect(c.readinessProbe.httpGet.path).toBe("/readyz");
    expect(d.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(30);
    const svc = find("Service", "distx-scheduler") as Loose;
    expect(svc.spec.selector).toEqual(d.spec.selector.matchLabels);
    expect(c.env.find((e: Loose) => e.name === "DISTX_REDIS_URL").valueFrom.secretKeyRef.name).toBe("distx-backends");
  });

  it("agents: a DaemonSet for CPU nodes and one for GPU nodes selected by label, joining with the token Secret", () => {
    const cpu = find("DaemonSet", "distx-agent") as Loose;
    const gpu = find("DaemonSet", "distx-agent-gpu") as Loose;
    expect(gpu.spec.template.spec.nodeSelector).toEqual({ "distributex.io/gpu": "true" });
    expect(gpu.spec.template.spec.containers[0].resources.limits["nvidia.com/gpu"]).toBe(1);
    const notGpu = cpu.spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0];
    expect(notGpu).toEqual({ key: "distributex.io/gpu", operator: "NotIn", values: ["true"] });
    for (const ds of [cpu, gpu]) {
      const env = Object.fromEntries(ds.spec.template.spec.containers[0].env.map((e: Loose) => [e.name, e]));
      expect(env.DISTX_JOIN_TOKEN_FILE.value).toBe("/etc/distx-join/token");
      expect(env.DISTX_CA_HASH.valueFrom.secretKeyRef).toEqual({ name: "distx-join", key: "caHash" });
    }
  });

  it("every pod is unprivileged (the namespace enforces the restricted Pod Security Standard)", () => {
    expect((find("Namespace", "distributex") as Loose).metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("restricted");
    for (const { doc } of docs.filter((d) => ["Deployment", "DaemonSet"].includes(d.doc.kind))) {
      const pod = (doc as Loose).spec.template.spec;
      expect(pod.securityContext.runAsNonRoot, doc.metadata.name).toBe(true);
      expect(pod.securityContext.seccompProfile.type).toBe("RuntimeDefault");
      expect(pod.automountServiceAccountToken).toBe(false);
      expect(pod.volumes.some((v: Loose) => v.hostPath), `${doc.metadata.name}: hostPath is not allowed under restricted`).toBe(false);
      for (const c of pod.containers) {
        expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
      }
    }
  });
});
