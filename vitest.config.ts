import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // End-to-end tests spawn real processes; give them room, and keep files from
    // fighting over the 2 cores by running at most two files at once.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: 2,
    reporters: ["default"],
    // `distx up` and a scheduler without --data-dir keep their PKI, tokens and client profile in
    // $DISTX_HOME (default ~/.distx): tests get a folder of their own, never the user's.
    env: { DISTX_HOME: process.env.DISTX_TEST_HOME ?? mkdtempSync(path.join(os.tmpdir(), "distx-test-home-")) },
  },
});
