/**
 * The built CLI as a user runs it (a separate process, scripts/test.sh builds first)
 * against the real app served over HTTP on a free port, logged in with the operator key.
 */
import { serve, type ServerType } from "@hono/node-server";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { createHarness, type Harness } from "./harness.ts";

const run = promisify(execFile);
const CLI = resolve(import.meta.dirname, "../dist/cli.js");

export interface CliHarness {
  h: Harness;
  url: string;
  hdrcap(...args: string[]): Promise<{ stdout: string; stderr: string }>;
  close(): Promise<void>;
}

export async function startCliHarness(): Promise<CliHarness> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npm run build)`);
  const h = await createHarness();
  const server: ServerType = await new Promise((r) => {
    const s = serve({ fetch: h.app.fetch, hostname: "127.0.0.1", port: 0 }, () => r(s));
  });
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    h,
    url,
    hdrcap: (...args) => run(process.execPath, [CLI, ...args], { env: { ...process.env, HDRCAP_URL: url, HDRCAP_API_KEY: h.operatorKey, XDG_CONFIG_HOME: "/nonexistent" } }),
    async close() {
      await new Promise((r) => server.close(r));
      await h.close();
    },
  };
}
