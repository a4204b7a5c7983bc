// `distx result --logs`: each task's kernel log lines (env.log), as `[task N] line`.
import type { TaskResult } from "../../client/index.js";
import { sanitizeLogLine } from "../../common/kernel-log.js";

/**
 * Prints the lines of every task that logged, in task order. Sanitised again here (a scheduler of
 * another build, or a hostile one, may not have): no line can move the cursor, clear the screen
 * or pass for another task's line.
 */
export function printLogs(results: readonly TaskResult[]): void {
  const logged = results.filter((r) => (r.logs ?? []).length > 0);
  if (logged.length === 0) console.log("logs: no task logged anything");
  for (const r of logged) for (const line of r.logs) console.log(`[task ${r.taskIndex}] ${sanitizeLogLine(line)}`);
}

/** Without --logs: one line saying which tasks logged, so the lines are not missed. */
export function printLogsHint(jobId: string, results: readonly TaskResult[]): void {
  const logged = results.filter((r) => (r.logs ?? []).length > 0);
  if (logged.length === 0) return;
  const shown = logged.slice(0, 8).map((r) => r.taskIndex).join(", ") + (logged.length > 8 ? ", …" : "");
  console.log(`${logged.length} task(s) logged lines (${shown}): distx result ${jobId} --logs`);
}
