// `distx token create|list|revoke` (admin) and `distx kernel delete`.
import type { Command } from "commander";
import { fail, table as makeTable, UsageError } from "../util.js";
import { connect, schedulerOption } from "./client.js";

type Creds = { scheduler: string; retryDeadlineMs: number };

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "90s", "30m", "24h", "7d" → ms. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) throw new UsageError(`--ttl ${JSON.stringify(text)}: use a number with a unit, e.g. 90s, 30m, 24h, 7d`);
  const ms = Number(m[1]) * UNITS[m[2]!]!;
  if (!(ms > 0)) throw new UsageError("--ttl must be positive");
  return ms;
}

const when = (ms: number) => (ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "-");

export function registerTokenCommands(program: Command): void {
  const token = program.command("token").description("API tokens: create, list, revoke (admin)");

  schedulerOption(
    token
      .command("create")
      .description("create an API token; prints it once (only its hash is kept)")
      .requiredOption("--role <role>", "read | submit | admin")
      .option("--tenant <tenant>", "the tenant it acts in", "default")
      .option("--ttl <duration>", "expires after this long, e.g. 24h, 7d (default: never)")
      .option("--description <text>", "what it is for"),
  ).action(async (opts: Creds & { role: string; tenant: string; ttl?: string; description?: string }) => {
    try {
      if (!["read", "submit", "admin"].includes(opts.role)) throw new UsageError(`--role must be read, submit or admin, got ${JSON.stringify(opts.role)}`);
      const ttlMs = opts.ttl ? parseDuration(opts.ttl) : 0;
      const client = connect(opts.scheduler, opts.retryDeadlineMs);
      const r = await client.createToken({ role: opts.role as "read" | "submit" | "admin", tenant: opts.tenant, ttlMs, description: opts.description ?? "" });
      client.close();
      // The token alone on stdout (for $(distx token create …)); what it is on stderr.
      console.log(r.token);
      console.error(`token ${r.info.id}: role ${r.info.role}, tenant ${r.info.tenant}, expires ${when(r.info.expiresAtMs)}. Keep it secret: it is not shown again.`);
    } catch (err) {
      fail(err);
    }
  });

  schedulerOption(
    token.command("list").description("list tokens (never their secrets)").option("-a, --all", "include revoked tokens").option("--json", "JSON output"),
  ).action(async (opts: Creds & { all?: boolean; json?: boolean }) => {
    try {
      const client = connect(opts.scheduler, opts.retryDeadlineMs);
      const tokens = await client.listTokens(opts.all ?? false);
      client.close();
      if (opts.json) return console.log(JSON.stringify(tokens, null, 2));
      const t = makeTable(["id", "kind", "role", "tenant", "created", "expires", "revoked", "ends with", "description"]);
      for (const k of tokens) t.push([k.id, k.kind, k.role || "-", k.tenant, when(k.createdAtMs), when(k.expiresAtMs), when(k.revokedAtMs), k.last4 ? `…${k.last4}` : "-", k.description || "-"]);
      console.log(t.toString());
    } catch (err) {
      fail(err);
    }
  });

  schedulerOption(token.command("revoke").description("revoke a token at once").argument("<id>", "the token's id (distx token list)")).action(async (id: string, opts: Creds) => {
    try {
      const client = connect(opts.scheduler, opts.retryDeadlineMs);
      const info = await client.revokeToken(id);
      client.close();
      console.log(`revoked token ${info.id} (role ${info.role || info.kind}, tenant ${info.tenant})`);
    } catch (err) {
      fail(err);
    }
  });

  const kernel = program.commands.find((c) => c.name() === "kernel") ?? program.command("kernel");
  schedulerOption(
    kernel
      .command("delete")
      .description("delete your tenant's registration of a kernel (refused while a job of yours uses it)")
      .argument("<kernel-id>")
      .option("--tenant <tenant>", "admin: delete this tenant's registration"),
  ).action(async (kernelId: string, opts: Creds & { tenant?: string }) => {
    try {
      const client = connect(opts.scheduler, opts.retryDeadlineMs);
      const r = await client.deleteKernel(kernelId, opts.tenant ?? "");
      client.close();
      console.log(`deleted kernel ${kernelId}${r.contentDeleted ? " (its bytes too: no tenant holds it now)" : ""}`);
    } catch (err) {
      fail(err);
    }
  });
}
