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
import { newEnrollmentTokenSecret, newId } from "../services/ids.ts";
import { bootstrapFirstTenant } from "../services/tenants.ts";
import { configPath, readConfig, writeConfig } from "./config.ts";
import {
  createNatsAuthority,
  freePort,
  natsAuthorityFromState,
  stateOf,
  upgradeNatsAuthorityState,
  type LegacyNatsAuthorityState,
  type NatsAuthority,
  type NatsAuthorityState,
} from "@hdrcap/local-services";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";

/** The port saved in `file` when it is free, otherwise a new free one (saved). */
async function stablePort(file: string): Promise<number> {
  const saved = existsSync(file) ? Number(readFileSync(file, "utf8").trim()) : NaN;
  if (Number.isInteger(saved) && saved > 0 && (await portFree(saved))) return saved;
  const port = await freePort();
  writeFileSync(file, `${port}\n`);
  return port;
}

/**
 * The local NATS accounts survive restarts, so enrolled agents' credentials stay valid. A file
 * from before revocation support is upgraded in place (new operator, signing key and system
 * account around the same application account key, so agents' credentials stay valid).
 */
export async function loadOrCreateNatsAuthority(file: string, log: (msg: string) => void = () => {}): Promise<NatsAuthority> {
  if (existsSync(file)) {
    const { state, upgraded } = await upgradeNatsAuthorityState(JSON.parse(readFileSync(file, "utf8")) as NatsAuthorityState | LegacyNatsAuthorityState);
    if (upgraded) {
      writeFileSync(file, JSON.stringify(state, null, 2), { mode: 0o600 });
      log(`upgraded ${file}: new NATS operator with a signing key and a system user (same account key: agents' credentials stay valid)`);
    }
    return natsAuthorityFromState(state);
  }
  const authority = await createNatsAuthority();
  writeFileSync(file, JSON.stringify(stateOf(authority), null, 2), { mode: 0o600 });
  return authority;
}

export interface LocalUpOptions {
  stateDir: string;
  port: number;
  logger: Logger;
  /** The agent's entry point (apps/agent/dist/main.js); no local agent when undefined. */
  agentBin?: string;
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
  // Signals are handled from the first moment: Ctrl-C during start-up also stops
  // whatever has started, in order, instead of leaving it running.
  let signalled: NodeJS.Signals | undefined;
  const stopRequested = new Promise<void>((resolveStop) => {
    const onSignal = (signal: NodeJS.Signals) => {
      signalled = signal;
      resolveStop();
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
  });
  const interrupted = stopRequested.then(() => {
    throw new Error(`interrupted by ${signalled}`);
  });
  interrupted.catch(() => {});
  const orStop = <T>(p: Promise<T>): Promise<T> => Promise.race([p, interrupted]);

  try {
    let pg: PostgresServer | undefined;
    let nats: NatsServer | undefined;
    if (!process.env.DATABASE_URL) {
      log(`starting Postgres (data in ${join(stateDir, "postgres")})`);
      pg = await orStop(startPostgres({ dir: join(stateDir, "postgres"), logFile: join(stateDir, "postgres.log") }));
      stops.push(() => pg!.stop());
    }
    let natsAuth: Record<string, string> = {};
    if (!process.env.NATS_URL) {
      log(`starting nats-server with JetStream (store in ${join(stateDir, "nats")})`);
      const authority = await loadOrCreateNatsAuthority(join(stateDir, "nats-authority.json"), log);
      natsAuth = { NATS_ACCOUNT_SEED: authority.account.seed, NATS_OPERATOR_SIGNING_SEED: authority.operatorSigningSeed, NATS_SYSTEM_CREDS: authority.systemUserCreds };
      // A stable port: enrolled agents keep the NATS URL they were given.
      const natsPort = await stablePort(join(stateDir, "nats-port"));
      const natsDir = join(stateDir, "nats");
      nats = await orStop(startNats({ dir: natsDir, extraConfig: authority.serverConfig({ jwtDir: join(natsDir, "jwt") }), port: natsPort }));
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
      ...natsAuth,
      PORT: String(port),
    });

    const admin = createDb(env.DATABASE_URL, { max: 2 });
    stops.push(() => admin.close());
    const applied = await migrateToLatest(admin.db);
    log(applied.length ? `applied migrations: ${applied.join(", ")}` : "database schema is up to date");

    const server = await orStop(startServer(env, opts.logger));
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

    let agentId: string | undefined;
    let demo: string[] = [];
    if (opts.agentBin) {
      agentId = await orStop(startLocalAgent({ ...opts, agentBin: opts.agentBin, stateDir, serverUrl: server.url, db: admin.db, log, stops }));
      demo = await orStop(runDemoCapture(server.url, key, agentId, log)).catch((err: unknown) => {
        log(`the demo capture did not work: ${err instanceof Error ? err.message : String(err)}`);
        return [];
      });
    }
    const keyShown = shownKey ? shownKey : `${key.slice(0, 11)}… (saved earlier in ${configPath()})`;
    process.stdout.write(
      [
        "",
        "hdrcap is running.",
        `  control plane:  ${server.url}   (API docs: ${server.url}/docs)`,
        `  API key:        ${keyShown}${shownKey ? "   ← shown once; saved for the CLI" : ""}`,
        `  CLI config:     ${configPath()}`,
        ...(agentId ? [`  local agent:    ${agentId} (online; logs in ${join(stateDir, "agent.log")})`] : []),
        ...demo,
        "",
        "Try it:",
        `  KEY=$(node -p 'require("${configPath()}").apiKey')`,
        `  curl -s -H "Authorization: Bearer $KEY" ${server.url}/v1/whoami`,
        ...(agentId
          ? [
              "  # capture HTTP on a port of this host (here: the control plane's own port), make a request, read the headers back:",
              `  CAP=$(curl -s -H "Authorization: Bearer $KEY" -H 'content-type: application/json' ${server.url}/v1/captures -d '{"name":"try","filter":{"ports":[${server.port}]}}' | node -p 'JSON.parse(require("fs").readFileSync(0)).id')`,
              `  sleep 1; curl -s -H "X-Hello: world" ${server.url}/healthz; sleep 1`,
              `  curl -s -H "Authorization: Bearer $KEY" "${server.url}/v1/captures/$CAP/records?order=desc&limit=4"`,
            ]
          : []),
        "",
        "Press Ctrl-C to stop everything.",
        "",
      ].join("\n"),
    );

    await stopRequested;
    log("stopping…");
  } catch (err) {
    if (!signalled) throw err;
    log(`stopping (${signalled} during start-up)…`);
  } finally {
    await stopAll();
  }
  log("stopped");
  // Anything still starting in the background when the signal came is killed on exit.
  if (signalled) process.exit(0);
}

interface LocalAgentOptions {
  agentBin: string;
  stateDir: string;
  serverUrl: string;
  db: import("@hdrcap/db").Db;
  log: (msg: string) => void;
  stops: Array<() => Promise<void>>;
}

/** Enroll (first run only) and start the agent on this host; resolves once it is online. */
async function startLocalAgent(o: LocalAgentOptions): Promise<string> {
  const { startProcess, waitUntil } = await import("@hdrcap/local-services");
  const agentState = join(o.stateDir, "agent");
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (!existsSync(join(agentState, "agent.json"))) {
    const tenant = (await findTenantBySlug(o.db, "default")) ?? (await listTenants(o.db, { limit: 1 }))[0];
    if (!tenant) throw new Error("no tenant to enroll the local agent into");
    const secret = newEnrollmentTokenSecret();
    await o.db
      .insertInto("enrollment_tokens")
      .values({ id: newId("etk"), tenant_id: tenant.id, prefix: secret.prefix, hash: secret.hash, labels: { local: "true" }, max_uses: 1, expires_at: new Date(Date.now() + 600_000), revoked_at: null, created_by_key_id: null })
      .execute();
    env.HDRCAP_ENROLLMENT_TOKEN = secret.token;
  }
  o.log("starting the local agent");
  const startedAt = new Date();
  const agent = startProcess("hdrcap-agent", process.execPath, [o.agentBin, "run", "--control-plane", o.serverUrl, "--state-dir", agentState, "--log-level", "info"], {
    logFile: join(o.stateDir, "agent.log"),
    env,
  });
  o.stops.push(() => agent.stop("SIGTERM", 15_000));
  let agentId: string | undefined;
  await waitUntil(
    "the local agent",
    async () => {
      if (!existsSync(join(agentState, "agent.json"))) return false;
      agentId ??= (JSON.parse(readFileSync(join(agentState, "agent.json"), "utf8")) as { agentId: string }).agentId;
      // Seen by this run (a row left "online" by a previous run does not count).
      const row = await o.db.selectFrom("agents").select(["status", "last_seen_at"]).where("id", "=", agentId).executeTakeFirst();
      return row?.status === "online" && row.last_seen_at !== null && row.last_seen_at >= startedAt;
    },
    { timeoutMs: 60_000, alive: () => agent.exitReason() },
  );
  return agentId!;
}

/** Capture the control plane's own port for a moment, make one request, show its headers. */
async function runDemoCapture(url: string, key: string, agentId: string, log: (msg: string) => void): Promise<string[]> {
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<any>;
  };
  const port = Number(new URL(url).port);
  const capture = await api("POST", "/v1/captures", { name: "quick-start demo", agents: { ids: [agentId] }, filter: { ports: [port], role: "server" }, limits: { durationSeconds: 60 } });
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && (await api("GET", `/v1/captures/${capture.id}`)).status !== "running") await new Promise((r) => setTimeout(r, 200));
  // A fresh connection (fetch would reuse one opened before the capture started, which the
  // kernel sees mid-stream and cannot assign a role to).
  await new Promise<void>((resolveReq, reject) => {
    const req = httpRequest(`${url}/healthz`, { agent: false, headers: { "X-Hello": "from the quick start", Authorization: "Bearer not-a-real-secret" } }, (res) => {
      res.resume();
      res.on("end", resolveReq);
    });
    req.on("error", reject);
    req.end();
  });
  let request: any;
  while (Date.now() < deadline && !request) {
    await new Promise((r) => setTimeout(r, 300));
    const page = await api("GET", `/v1/captures/${capture.id}/records?limit=100`);
    request = page.items.find((r: any) => r.kind === "request" && r.path === "/healthz");
  }
  await api("POST", `/v1/captures/${capture.id}/stop`);
  if (!request) throw new Error(`no record of the demo request arrived (capture ${capture.id})`);
  log(`demo capture ${capture.id} saw the request`);
  return [
    "",
    `Captured by the local agent (capture ${capture.id}): your request's headers, secrets redacted:`,
    `  ${request.method} ${request.path} ${request.version}   from ${request.src.ip}:${request.src.port} (${request.comm}[${request.pid}])`,
    ...request.headers.map((h: { name: string; value: string }) => `    ${h.name}: ${h.value}`),
  ];
}
