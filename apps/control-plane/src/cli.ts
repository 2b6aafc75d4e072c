#!/usr/bin/env node
/** `hdrcap`: serve the control plane, migrate, bootstrap, and talk to the API. */
import type { ApiKeyView, CreatedApiKey, CreatedTenant, Page, TenantView, WhoAmI } from "@hdrcap/api";
import { createDb, migrateDown, migrateToLatest } from "@hdrcap/db";
import { Command, Option } from "commander";
import { loadEnv } from "./env.ts";
import { createLogger } from "./logger.ts";
import { startServer } from "./server.ts";
import { bootstrapFirstTenant } from "./services/tenants.ts";
import { createApiClient } from "./cli/api-client.ts";
import { resolveLogin } from "./cli/config.ts";
import { localUp } from "./cli/local-up.ts";
import { registerInstallCommand } from "./cli/install-command.ts";
import { printTable } from "./cli/output.ts";
import { registerCaptureCommands } from "./cli/captures-commands.ts";
import { registerAgentCommands } from "./cli/agents-commands.ts";
import { registerApisCommands } from "./cli/apis-commands.ts";

const program = new Command("hdrcap").description("hdrcap control plane and CLI").showHelpAfterError();
const loginOptions = (cmd: Command) =>
  cmd
    .addOption(new Option("--url <url>", "control plane URL (default: saved config)"))
    .addOption(new Option("--api-key <key>", "API key (default: saved config)"))
    .option("--json", "print JSON instead of a table");

function databaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error("DATABASE_URL is not set");
  return url;
}

program
  .command("serve")
  .description("run the control plane (env: DATABASE_URL, NATS_URL, HOST, PORT, HDRCAP_ROLES)")
  .option("--roles <roles>", "comma-separated roles: api,ingest,scheduler")
  .option("--migrate", "apply pending migrations first")
  .action(async (opts: { roles?: string; migrate?: boolean }) => {
    const env = loadEnv({ ...process.env, ...(opts.roles ? { HDRCAP_ROLES: opts.roles } : {}) });
    const logger = createLogger(env.LOG_LEVEL);
    if (opts.migrate) {
      const h = createDb(env.DATABASE_URL, { max: 1 });
      await migrateToLatest(h.db).finally(() => h.close());
    }
    const server = await startServer(env, logger);
    await new Promise<void>((r) => {
      process.once("SIGINT", r);
      process.once("SIGTERM", r);
    });
    logger.info("shutting down");
    await server.close();
  });

program
  .command("migrate")
  .description("apply pending database migrations (env: DATABASE_URL)")
  .option("--down", "undo the most recent migration instead")
  .action(async (opts: { down?: boolean }) => {
    const h = createDb(databaseUrl(), { max: 1 });
    try {
      const names = opts.down ? await migrateDown(h.db) : await migrateToLatest(h.db);
      console.log(names.length ? `${opts.down ? "undone" : "applied"}: ${names.join(", ")}` : "nothing to do");
    } finally {
      await h.close();
    }
  });

const local = program.command("local").description("a complete local installation for one machine");
local
  .command("up")
  .description("start Postgres, NATS and the control plane locally; print a working key")
  .option("--state-dir <dir>", "where local services keep their data", ".state")
  .option("--port <port>", "control plane port", "7070")
  .option("--agent-bin <path>", "also enroll and run the agent on this host (path to apps/agent/dist/main.js)")
  .action(async (opts: { stateDir: string; port: string; agentBin?: string }) => {
    await localUp({ stateDir: opts.stateDir, port: Number(opts.port), logger: createLogger(process.env.LOG_LEVEL ?? "warn"), agentBin: opts.agentBin });
  });

const admin = program.command("admin").description("operator commands");
admin
  .command("bootstrap")
  .description("create the first tenant and its operator key if no tenant exists (env: DATABASE_URL)")
  .option("--slug <slug>", "tenant slug", "default")
  .option("--name <name>", "tenant name", "Default tenant")
  .action(async (opts: { slug: string; name: string }) => {
    const h = createDb(databaseUrl(), { max: 1 });
    try {
      const created = await bootstrapFirstTenant(h.db, opts);
      if (!created) {
        console.error("a tenant already exists; nothing to do");
        process.exitCode = 3;
        return;
      }
      console.log(JSON.stringify(created, null, 2));
    } finally {
      await h.close();
    }
  });

const tenants = admin.command("tenants").description("manage tenants (operator key)");
loginOptions(tenants.command("create").argument("<slug>").option("--name <name>", "display name"))
  .description("create a tenant; prints its first admin key once")
  .action(async (slug: string, opts: { url?: string; apiKey?: string; json?: boolean; name?: string }) => {
    const api = createApiClient(resolveLogin(opts));
    const created = await api.post<CreatedTenant>("/v1/tenants", { slug, name: opts.name ?? slug });
    if (opts.json) return console.log(JSON.stringify(created, null, 2));
    console.log(`tenant ${created.tenant.slug} (${created.tenant.id}) created\nadmin key (shown once): ${created.key}`);
  });
loginOptions(tenants.command("list"))
  .description("list tenants")
  .action(async (opts: { url?: string; apiKey?: string; json?: boolean }) => {
    const page = await createApiClient(resolveLogin(opts)).get<Page<TenantView>>("/v1/tenants?limit=1000");
    if (opts.json) return console.log(JSON.stringify(page.items, null, 2));
    printTable(page.items, ["id", "slug", "name", "createdAt"]);
  });

loginOptions(program.command("whoami"))
  .description("show the tenant and key in use")
  .action(async (opts: { url?: string; apiKey?: string; json?: boolean }) => {
    const me = await createApiClient(resolveLogin(opts)).get<WhoAmI>("/v1/whoami");
    if (opts.json) return console.log(JSON.stringify(me, null, 2));
    console.log(`tenant ${me.tenant.slug} (${me.tenant.id}); key ${me.apiKey.prefix}… "${me.apiKey.name}" scopes: ${me.apiKey.scopes.join(", ")}`);
  });

const keys = program.command("keys").description("manage API keys (admin)");
loginOptions(keys.command("create").argument("<name>").requiredOption("--scopes <scopes>", "comma-separated scopes").option("--expires-at <iso>", "expiry time"))
  .description("create a key; prints the secret once")
  .action(async (name: string, opts: { url?: string; apiKey?: string; json?: boolean; scopes: string; expiresAt?: string }) => {
    const created = await createApiClient(resolveLogin(opts)).post<CreatedApiKey>("/v1/api-keys", {
      name,
      scopes: opts.scopes.split(",").map((s) => s.trim()),
      ...(opts.expiresAt ? { expiresAt: opts.expiresAt } : {}),
    });
    if (opts.json) return console.log(JSON.stringify(created, null, 2));
    console.log(`key ${created.apiKey.id} created (shown once): ${created.key}`);
  });
loginOptions(keys.command("list"))
  .action(async (opts: { url?: string; apiKey?: string; json?: boolean }) => {
    const page = await createApiClient(resolveLogin(opts)).get<Page<ApiKeyView>>("/v1/api-keys?limit=1000");
    if (opts.json) return console.log(JSON.stringify(page.items, null, 2));
    printTable(page.items, ["id", "name", "prefix", "scopes", "expiresAt", "revokedAt", "lastUsedAt"]);
  });
loginOptions(keys.command("revoke").argument("<id>"))
  .action(async (id: string, opts: { url?: string; apiKey?: string; json?: boolean }) => {
    const key = await createApiClient(resolveLogin(opts)).delete<ApiKeyView>(`/v1/api-keys/${encodeURIComponent(id)}`);
    console.log(opts.json ? JSON.stringify(key, null, 2) : `revoked ${key.id}`);
  });

registerCaptureCommands(program, loginOptions);
registerAgentCommands(program, loginOptions);
registerApisCommands(program, loginOptions);

registerInstallCommand(program);

program.parseAsync().catch((err: unknown) => {
  console.error(`hdrcap: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
