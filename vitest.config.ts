import { defineConfig } from "vitest/config";

// Three projects: pure-logic unit tests, integration tests against real Postgres
// and nats-server (started once per run by the testkit's global setup), and kernel
// tests against the real kernel (serial: they share kernel state).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["{apps,packages}/*/test/**/*.test.ts"],
          exclude: ["**/*.int.test.ts", "**/*.kernel.test.ts", "**/node_modules/**"],
        },
      },
      {
        test: {
          name: "integration",
          include: ["{apps,packages}/*/test/**/*.int.test.ts"],
          globalSetup: ["packages/testkit/src/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: "kernel",
          include: ["{apps,packages}/*/test/**/*.kernel.test.ts"],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
