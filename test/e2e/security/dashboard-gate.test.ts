// The admin HTTP port off loopback (issue #11, item 7): the dashboard and its JSON need an admin
// API token (Bearer header, or ?token= once, which sets an HttpOnly SameSite=Strict cookie);
// read tokens, revoked and unknown tokens are refused; /metrics and the probes stay open for
// scrapers. A real scheduler process listening on 0.0.0.0, reached over 127.0.0.1.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";

let t: TestCluster;
let base: string;

beforeAll(async () => {
  t = await startTestCluster("dashboard-gate", {
    agents: 1,
    agentArgs: () => ["--no-calibrate", "--gpu", "off"],
    schedulerArgs: ["--heartbeat-interval-ms", "200", "--agent-timeout-ms", "2000", "--admin-host", "0.0.0.0"],
  });
  const port = (await t.cluster.adminAddress("scheduler")).split(":").at(-1);
  base = `http://127.0.0.1:${port}`;
}, 120_000);

afterAll(async () => {
  await t?.stop();
});

const get = (p: string, headers: Record<string, string> = {}) => fetch(`${base}${p}`, { headers, redirect: "manual" });

describe("dashboard off loopback", () => {
  it("refuses no token, a read token, an unknown and a revoked token; admits an admin token", async () => {
    const none = await get("/dashboard");
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe("Bearer");
    expect(await none.text()).toMatch(/needs an API token/);
    expect((await get("/api/state")).status).toBe(401);
    expect((await get("/api/jobs")).status).toBe(401);

    const read = (await t.client.createToken({ role: "read", tenant: "default", description: "gate read" })).token;
    const asRead = await get("/api/state", { authorization: `Bearer ${read}` });
    expect(asRead.status).toBe(403);
    expect(await asRead.text()).toMatch(/role read; the dashboard shows the whole cluster/);

    expect((await get("/api/state", { authorization: "Bearer dxt_notarealtoken" })).status).toBe(401);

    const admin = await t.client.createToken({ role: "admin", tenant: "default", description: "gate admin" });
    const ok = await get("/api/state", { authorization: `Bearer ${admin.token}` });
    expect(ok.status).toBe(200);
    expect((await ok.json()) as object).toHaveProperty("nodes");

    await t.client.revokeToken(admin.info.id);
    // Other schedulers re-verify within 1 s; this one clears its cache at once.
    const revoked = await get("/api/state", { authorization: `Bearer ${admin.token}` });
    expect(revoked.status).toBe(401);
    expect(await revoked.text()).toMatch(/token refused/);
  });

  it("?token= sets an HttpOnly, SameSite=Strict cookie the page's own requests then use", async () => {
    const page = await get(`/dashboard?token=${t.adminToken}`);
    expect(page.status).toBe(200);
    const cookie = page.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(/^distx_dashboard=[^;]+; HttpOnly; SameSite=Strict; Path=\//);
    const state = await get("/api/state", { cookie: cookie.split(";")[0]! });
    expect(state.status).toBe(200);
  });

  it("leaves /metrics and the health probes open for scrapers", async () => {
    expect((await get("/metrics")).status).toBe(200);
    expect((await get("/healthz")).status).toBe(200);
  });
});
