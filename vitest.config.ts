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
    // A DISTX_HOME per test file (each file runs in its own process): see the setup file.
    setupFiles: ["test/helpers/setup-home.ts"],
  },
});
