#!/usr/bin/env -S node --initial-old-space-size=128
// Entry point for the `distx` command: runs the compiled CLI (npm run build makes dist/).
// The node flag is the daemons' heap start (see DAEMON_NODE_FLAGS in cli/local-cluster.ts).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const main = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  console.error("distx: dist/ is missing; run `npm run build` first");
  process.exit(1);
}
await import(main.href);
