/**
 * A project-owned nats-server with JetStream on free loopback ports and its own
 * store directory. Used by scripts/up.sh, the test harness and the benchmarks.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { freePort, waitUntil } from "./ports.ts";
import { startProcess, type ManagedProcess } from "./process.ts";

export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly monitorPort: number;
  readonly dir: string;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

export interface StartNatsOptions {
  dir: string;
  port?: number;
  /** Extra lines appended to the generated configuration file. */
  extraConfig?: string;
}

export function findNatsServer(): string {
  const bin = process.env.NATS_SERVER_BIN ?? "nats-server";
  try {
    execFileSync(bin, ["--version"], { stdio: "pipe" });
    return bin;
  } catch {
    throw new Error("nats-server not found: install the `nats-server` package or set NATS_SERVER_BIN");
  }
}

export async function startNats(opts: StartNatsOptions): Promise<NatsServer> {
  const bin = findNatsServer();
  const dir = resolve(opts.dir);
  mkdirSync(join(dir, "jetstream"), { recursive: true });
  const port = opts.port ?? (await freePort());
  const monitorPort = await freePort();
  const conf = join(dir, "nats.conf");
  writeFileSync(
    conf,
    [
      `listen: 127.0.0.1:${port}`,
      `http: 127.0.0.1:${monitorPort}`,
      `jetstream { store_dir: "${join(dir, "jetstream")}" }`,
      opts.extraConfig ?? "",
    ].join("\n"),
  );
  // Relative paths in the configuration (the JWT resolver's `jwt` directory) live in `dir`.
  const proc = startProcess("nats-server", bin, ["-c", conf], { logFile: join(dir, `nats-${port}.log`), cwd: dir });
  await waitUntil(
    "nats-server",
    async () => {
      const res = await fetch(`http://127.0.0.1:${monitorPort}/healthz?js-enabled-only=true`);
      return res.ok;
    },
    { alive: () => proc.exitReason() },
  );
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    monitorPort,
    dir,
    process: proc,
    stop: () => proc.stop("SIGTERM"),
  };
}
