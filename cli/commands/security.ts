// `distx init` (cluster CA, scheduler certificate, bootstrap admin token, client profile),
// `distx join-token create` and `distx node remove` (admin): see docs/security.md.
import { promises as fs } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { DistributeXClient } from "../../client/index.js";
import { defaultDataDir } from "../../common/config.js";
import { caPin, ensurePki, retireOldCa, rotateCa } from "../../scheduler/auth/pki.js";
import { MemoryTokenStore } from "../../scheduler/auth/token-stores.js";
import { adminTokenFile, ensureAdminToken } from "../../scheduler/auth/bootstrap.js";
import { createLogger } from "../../common/logger.js";
import { fail, UsageError } from "../util.js";
import { globalCredentials } from "./client.js";

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(text: string): number {
  const m = DURATION.exec(text);
  if (!m) throw new UsageError(`--ttl ${JSON.stringify(text)}: use a number and a unit, e.g. 30m, 1h, 2d`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

function adminClient(scheduler: string): DistributeXClient {
  return new DistributeXClient(scheduler, { timeoutMs: 30_000, ...globalCredentials });
}

export function registerSecurityCommands(program: Command, schedulerOption: (cmd: Command) => Command): void {
  program
    .command("init")
    .description("create the cluster CA, the scheduler certificate, a bootstrap admin token and the client profile")
    .option("--data-dir <dir>", "cluster data dir (default $DISTX_HOME or ~/.distx)")
    .option("--host <name>", "a name or address clients use for the scheduler (repeatable)", (v: string, all: string[]) => [...all, v], [] as string[])
    .option("-s, --scheduler <host:port>", "the scheduler address written to the client profile", "127.0.0.1:7070")
    .action(async (opts: { dataDir?: string; host: string[]; scheduler: string }) => {
      try {
        const dir = path.resolve(opts.dataDir ?? defaultDataDir());
        const pki = await ensurePki(dir, opts.host);
        const tokens = await MemoryTokenStore.open(path.join(dir, "tokens.json"));
        await ensureAdminToken(tokens, dir, createLogger("init", "warn"));
        const profile = { scheduler: opts.scheduler, caFile: pki.paths.caCert, tokenFile: adminTokenFile(dir) };
        await fs.writeFile(path.join(dir, "client.json"), JSON.stringify(profile, null, 2) + "\n", { mode: 0o600 });
        console.log(`${pki.created ? "created" : "kept the existing"} cluster PKI in ${pki.paths.dir}`);
        console.log(`CA hash:       ${caPin(pki.servingCaPem)}`);
        console.log(`admin token:   ${profile.tokenFile} (0600)`);
        console.log(`client profile: ${path.join(dir, "client.json")}`);
        console.log(`next: distx scheduler --data-dir ${dir}   then   distx join-token create`);
      } catch (err) {
        fail(err);
      }
    });

  // CA rotation without downtime (docs/security.md, Rotation): run on the scheduler's data dir;
  // a running scheduler picks the change up within a second.
  const ca = program.command("ca").description("rotate the cluster CA without downtime (operator, on the scheduler's data dir)");
  ca.command("rotate")
    .description("create a new CA trusted beside the current one; joins and renewals get certificates from the new one")
    .option("--data-dir <dir>", "cluster data dir (default $DISTX_HOME or ~/.distx)")
    .action(async (opts: { dataDir?: string }) => {
      try {
        const dir = path.resolve(opts.dataDir ?? defaultDataDir());
        const { newCaPem, oldCaPem } = await rotateCa(dir);
        console.log(`new CA:      ${caPin(newCaPem)} (issues node certificates from now on)`);
        console.log(`old CA:      ${caPin(oldCaPem)} (still trusted; the scheduler's certificate is still from it)`);
        console.log(`trust both:  ${path.join(dir, "pki", "ca.crt")} (clients using the profile have it; copy it to clients that use --ca)`);
        console.log("next: wait until every agent has renewed (2/3 of its certificate's lifetime), then: distx ca retire-old");
      } catch (err) {
        fail(err);
      }
    });
  ca.command("retire-old")
    .description("end a CA rotation: the scheduler's certificate comes from the new CA and the old CA is no longer trusted")
    .option("--data-dir <dir>", "cluster data dir (default $DISTX_HOME or ~/.distx)")
    .action(async (opts: { dataDir?: string }) => {
      try {
        const dir = path.resolve(opts.dataDir ?? defaultDataDir());
        const { retiredCaPem } = await retireOldCa(dir);
        console.log(`retired CA:  ${caPin(retiredCaPem)} (certificates from it are refused from now on)`);
        console.log(`CA hash:     ${caPin((await ensurePki(dir)).servingCaPem)} (for new join tokens)`);
      } catch (err) {
        fail(err);
      }
    });

  const jt = program.command("join-token").description("join tokens for new agents (admin)");
  schedulerOption(
    jt
      .command("create")
      .description("print a join token and the CA hash an agent needs to join")
      .option("--ttl <duration>", "how long the token is valid (e.g. 30m, 1h, 2d)", "1h")
      .option("--uses <n>", "how many agents may join with it", "1"),
  ).action(async (opts: { scheduler: string; ttl: string; uses: string }) => {
    const client = adminClient(opts.scheduler);
    try {
      const uses = Number(opts.uses);
      if (!Number.isInteger(uses) || uses < 1) throw new UsageError(`--uses must be a positive whole number, got ${JSON.stringify(opts.uses)}`);
      const r = await client.createJoinToken({ ttlMs: parseDuration(opts.ttl), uses });
      console.log(`join token: ${r.token}`);
      console.log(`CA hash:    ${r.caHash}`);
      console.log(`expires:    ${new Date(r.expiresAtMs).toISOString()} (${uses} use${uses === 1 ? "" : "s"})`);
      console.log(`on the agent: distx agent --scheduler ${opts.scheduler} --join-token ${r.token} --ca-hash ${r.caHash}`);
    } catch (err) {
      fail(err);
    } finally {
      client.close();
    }
  });

  const node = program.command("node").description("manage nodes (admin)");
  schedulerOption(node.command("remove").description("remove a node: revoke its certificate and disconnect it").argument("<node-id>")).action(
    async (nodeId: string, opts: { scheduler: string }) => {
      const client = adminClient(opts.scheduler);
      try {
        const r = await client.removeNode(nodeId);
        console.log(`node ${nodeId} removed${r.wasConnected ? " and disconnected" : ""}; its certificate is refused from now on`);
      } catch (err) {
        fail(err);
      } finally {
        client.close();
      }
    },
  );
}
