// The multi-host harness itself: hosts reach each other over the bridge and only there, teardown
// leaves nothing behind, and what a killed run left is swept at the next start.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { multihostUnavailable, Topology } from "./topology.js";

const unavailable = multihostUnavailable();
const ip = (...args: string[]): string => execFileSync("ip", args, { encoding: "utf8" });

describe.skipIf(unavailable !== undefined)(unavailable ? `multi-host harness (skipped: ${unavailable})` : "multi-host harness", () => {
  let t: Topology | undefined;
  afterAll(async () => {
    await t?.destroy();
  });

  it("hosts talk over the bridge on their own addresses; a blackhole and a link down cut exactly what they say; destroy removes everything", async () => {
    t = await Topology.create();
    const [a, b] = [await t.addHost("a"), await t.addHost("b")];
    const server = t.spawn("b", "bash", ["-c", `exec python3 -c 'import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("${b.ip}", 5000)); s.listen(); time.sleep(60)'`], { stdio: "ignore" });
    const serverExited = new Promise((r) => server.once("exit", r));
    const connect = (from: string, to: string) => t!.exec(from, "bash", ["-c", `timeout 2 bash -c 'exec 3<>/dev/tcp/${to}/5000'`], { timeoutMs: 5000 }).then(() => true, () => false);
    await expect.poll(() => connect("a", b.ip), { timeout: 10_000 }).toBe(true);
    expect(await connect("a", "127.0.0.1")).toBe(false); // a's loopback is a's own
    await t.blackhole("a", "b");
    expect(await connect("a", b.ip)).toBe(false);
    await t.unblackhole("a", "b");
    expect(await connect("a", b.ip)).toBe(true);
    await t.linkDown("a");
    expect(await connect("a", b.ip)).toBe(false);
    await t.linkUp("a");
    await expect.poll(() => connect("a", b.ip), { timeout: 10_000 }).toBe(true);

    await t.destroy();
    await serverExited; // the processes inside the hosts are ended with them
    const namespaces = ip("netns", "list");
    expect(namespaces).not.toContain(a.ns);
    expect(namespaces).not.toContain(b.ns);
    expect(ip("-o", "link")).not.toContain(a.veth);
    expect(existsSync(`/run/distx-multihost/10.77.${t.subnet}`)).toBe(false);
    t = undefined;
  }, 60_000);

  it("what a run killed before its teardown left behind is removed at the next start", async () => {
    const dead = spawnSync("true").pid!; // a pid whose process has exited
    const ns = `dxmh-${dead}-0-left`;
    const bridge = `dxmh${dead.toString(36)}-0`;
    ip("netns", "add", ns);
    ip("link", "add", bridge, "type", "bridge");
    mkdirSync("/run/distx-multihost", { recursive: true });
    writeFileSync("/run/distx-multihost/10.77.255", String(dead));
    t = await Topology.create();
    expect(ip("netns", "list")).not.toContain(ns);
    expect(ip("-o", "link")).not.toContain(bridge);
    expect(existsSync("/run/distx-multihost/10.77.255")).toBe(false);
    await t.destroy();
    t = undefined;
  }, 60_000);
});
