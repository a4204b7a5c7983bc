// `distx alerts`: the scheduler's alerts (agent lost, job failing, predicted saturation).
// Without --follow it prints the alerts firing now and exits; with --follow it keeps
// streaming new and resolved alerts until interrupted.
import type { Command } from "commander";
import { DistributeXClient, type Alert } from "../../client/index.js";
import { hostPort } from "../../common/config.js";
import { fail, UsageError } from "../util.js";

const formatAlert = (a: Alert): string => {
  const at = new Date(a.state === "resolved" ? a.resolvedAtMs : a.firedAtMs).toISOString().replace("T", " ").slice(0, 19);
  const labels = Object.entries(a.labels).map(([k, v]) => `${k}=${v}`).join(" ");
  return `${at}  ${a.state.toUpperCase().padEnd(8)} ${a.severity.padEnd(8)} ${a.name}  ${a.summary}${labels ? `  [${labels}]` : ""}`;
};

export function registerAlertCommands(program: Command): void {
  program
    .command("alerts")
    .description("show the scheduler's active alerts; --follow streams them as they fire and resolve")
    .option("-s, --scheduler <host:port>", "scheduler address (env DISTX_SCHEDULER)", process.env.DISTX_SCHEDULER ?? "127.0.0.1:7070")
    .option("--token <token>", "API token (env DISTX_TOKEN; default: the token in $DISTX_HOME or ~/.distx)")
    .option("--token-file <file>", "read the API token from this file")
    .option("-f, --follow", "keep streaming alerts until interrupted")
    .option("--json", "one JSON object per line")
    .action(async (opts: { scheduler: string; token?: string; tokenFile?: string; follow?: boolean; json?: boolean }) => {
      const parsed = hostPort.safeParse(opts.scheduler);
      if (!parsed.success) fail(new UsageError(`--scheduler ${JSON.stringify(opts.scheduler)}: ${parsed.error.issues[0]?.message}`));
      const client = new DistributeXClient(opts.scheduler, { ...(opts.token ? { token: opts.token } : {}), ...(opts.tokenFile ? { tokenFile: opts.tokenFile } : {}) });
      const stop = new AbortController();
      for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => stop.abort());
      try {
        await client.waitForReady(10_000);
        const print = (a: Alert) => console.log(opts.json ? JSON.stringify(a) : formatAlert(a));
        if (!opts.follow) {
          // The active alerts come first on the stream; a short quiet period ends the replay.
          let quiet: NodeJS.Timeout | undefined;
          const done = new Promise<void>((r) => (quiet = setTimeout(r, 500)));
          let count = 0;
          const iterate = (async () => {
            for await (const a of client.watchAlerts({ includeActive: true, signal: stop.signal })) {
              count++;
              print(a);
              clearTimeout(quiet);
              quiet = setTimeout(() => stop.abort(), 300);
            }
          })();
          await Promise.race([done, iterate]);
          stop.abort();
          await iterate.catch(() => undefined);
          if (count === 0 && !opts.json) console.log("no active alerts");
        } else {
          if (!opts.json) console.error(`following alerts from ${opts.scheduler} (Ctrl-C to stop)`);
          for await (const a of client.watchAlerts({ includeActive: true, signal: stop.signal })) print(a);
        }
        client.close();
        process.exit(0);
      } catch (err) {
        client.close();
        fail(err);
      }
    });
}
