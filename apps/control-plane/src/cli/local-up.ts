/**
 * `hdrcap local up`: the README's run command. Starts project-owned Postgres and
 * nats-server under the state directory (unless DATABASE_URL / NATS_URL point at
 * the user's own), migrates, serves the control plane, makes sure there is a
 * tenant and a working key, saves it for the CLI and prints how to use it.
 * Ctrl-C stops everything.
 */
import { createDb, findTenantBySlug, migrateToLatest, listTenants } from "@hdrcap/db";
import { startNats, startPostgres, type NatsServer, type PostgresServer } from "@hdrcap/local-services";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { loadEnv } from "../env.ts";
import type { Logger } from "../logger.ts";
import { startServer } from "../server.ts";
import { mintApiKey, verifyApiKey } from "../services/api-keys.ts";
import { bootstrapFirstTenant } from "../services/tenants.ts";
import { configPath, readConfig, writeConfig } from "./config.ts";
import { freePort } from "@hdrcap/local-services";

export interface LocalUpOptions {
  stateDir: string;
  port: number;
  logger: Logger;
}

async function portFree(port: number): Promise<boolean> {
  const { createServer } = await import("node:net");
  return new Promise((resolveFree) => {
    const s = createServer();
    s.once("error", () => resolveFree(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolveFree(true)));
  });
}

export async function localUp(opts: LocalUpOptions): Promise<void> {
  const stateDir = resolve(opts.stateDir);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const log = (msg: string) => process.stderr.write(`hdrcap: ${msg}\n`);
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
  };

  try {
    let pg: PostgresServer | undefined;
    let nats: NatsServer | undefined;
    if (!process.env.DATABASE_URL) {
      log(`starting Postgres (data in ${join(stateDir, "postgres")})`);
      pg = await startPostgres({ dir: join(stateDir, "postgres"), logFile: join(stateDir, "postgres.log") });
      stops.push(() => pg!.stop());
    }
    if (!process.env.NATS_URL) {
      log(`starting nats-server with JetStream (store in ${join(stateDir, "nats")})`);
      nats = await startNats({ dir: join(stateDir, "nats") });
      stops.push(() => nats!.stop());
    }
    let port = opts.port;
    if (!(await portFree(port))) {
      const other = await freePort();
      log(`port ${port} is in use; using ${other}`);
      port = other;
    }
    const env = loadEnv({
      ...process.env,
      DATABASE_URL: process.env.DATABASE_URL ?? pg!.url,
      NATS_URL: process.env.NATS_URL ?? nats!.url,
      PORT: String(port),
    });

    const admin = createDb(env.DATABASE_URL, { max: 2 });
    stops.push(() => admin.close());
    const applied = await migrateToLatest(admin.db);
    log(applied.length ? `applied migrations: ${applied.join(", ")}` : "database schema is up to date");

    const server = await startServer(env, opts.logger);
    stops.push(() => server.close());

    // A working key for this machine's user, shown once when it is new.
    let shownKey: string | undefined;
    const saved = readConfig();
    const savedValid = saved && saved.url === server.url && (await verifyApiKey(admin.db, saved.apiKey)).ok;
    if (!savedValid) {
      const boot = await bootstrapFirstTenant(admin.db, { slug: "default", name: "Default tenant" });
      if (boot) {
        shownKey = boot.key;
        log(`created tenant "${boot.tenant.slug}" (${boot.tenant.id}) with an operator key`);
      } else {
        const tenant = (await findTenantBySlug(admin.db, "default")) ?? (await listTenants(admin.db, { limit: 1 }))[0];
        if (!tenant) throw new Error("no tenant found after bootstrap");
        const { key } = await mintApiKey(admin.db, tenant.id, { name: "local-up", scopes: ["operator", "admin"] });
        shownKey = key;
        log(`minted a new operator key for tenant "${tenant.slug}" (the saved one was missing or no longer valid)`);
      }
      writeConfig({ url: server.url, apiKey: shownKey });
    }
    const key = shownKey ?? saved!.apiKey;
    const keyShown = shownKey ? shownKey : `${key.slice(0, 11)}… (saved earlier in ${configPath()})`;
    process.stdout.write(
      [
        "",
        "hdrcap is running.",
        `  control plane:  ${server.url}   (API docs: ${server.url}/docs)`,
        `  API key:        ${keyShown}${shownKey ? "   ← shown once; saved for the CLI" : ""}`,
        `  CLI config:     ${configPath()}`,
        "",
        "Try it:",
        `  curl -s -H "Authorization: Bearer $(node -p 'require(\"${configPath()}\").apiKey')" ${server.url}/v1/whoami`,
        "",
        "Press Ctrl-C to stop everything.",
        "",
      ].join("\n"),
    );

    await new Promise<void>((resolveWait) => {
      process.once("SIGINT", () => resolveWait());
      process.once("SIGTERM", () => resolveWait());
    });
    log("stopping…");
  } finally {
    await stopAll();
  }
  log("stopped");
}
