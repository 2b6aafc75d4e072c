/**
 * Runs the control plane with its roles: `api` (HTTP + agent responders),
 * `ingest` (JetStream → Postgres), `scheduler` (expiry, offline detection).
 * All state is in Postgres and NATS, so any number of replicas can run any mix.
 * Shutdown is ordered: stop taking work, finish in-flight work, drain NATS, close the pool.
 */
import { createDb, type DbHandle } from "@hdrcap/db";
import { serve, type ServerType } from "@hono/node-server";
import { readFileSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import type { NatsConnection } from "@nats-io/transport-node";
import { createApp } from "./app.ts";
import { readSystemCreds, type Env } from "./env.ts";
import type { Logger } from "./logger.ts";
import { startAgentResponders } from "./messaging/agent-responders.ts";
import { startIngester } from "./messaging/ingester.ts";
import { connectNats } from "./messaging/nats-connection.ts";
import { createNudger } from "./messaging/nudge.ts";
import { createMetrics } from "./metrics.ts";
import { startScheduler } from "./services/scheduler.ts";
import { startAgentUpgradeDriver } from "./services/agent-upgrades.ts";
import { createUpgradeCommander } from "./messaging/agent-upgrade-command.ts";
import { startCredentialRevocations, type CredentialRevocations } from "./messaging/credential-revocations.ts";

export interface RunningServer {
  url: string;
  port: number;
  db: DbHandle;
  nats: NatsConnection;
  close(): Promise<void>;
}

export async function startServer(env: Env, logger: Logger): Promise<RunningServer> {
  const db = createDb(env.DATABASE_URL, { max: 20 });
  const nats = await connectNats(env.NATS_URL, logger, { accountSeed: env.NATS_ACCOUNT_SEED });
  const metrics = createMetrics();
  const stops: Array<() => Promise<void>> = [];
  const roles = new Set(env.HDRCAP_ROLES);

  let credentialRevocations: CredentialRevocations | undefined;
  if (env.NATS_OPERATOR_SIGNING_SEED && env.NATS_SYSTEM_CREDS && env.NATS_ACCOUNT_SEED) {
    try {
      credentialRevocations = await startCredentialRevocations(
        db.db,
        { natsUrl: env.NATS_URL, systemCreds: readSystemCreds(env.NATS_SYSTEM_CREDS), operatorSigningSeed: env.NATS_OPERATOR_SIGNING_SEED, accountSeed: env.NATS_ACCOUNT_SEED },
        logger.child({ component: "nats-revocations" }),
        metrics,
      );
    } catch (err) {
      // Misconfigured revocation is a start-up error, not a silent gap.
      await nats.close().catch(() => {});
      await db.close();
      throw err;
    }
    stops.push(() => credentialRevocations!.close());
    if (roles.has("scheduler")) stops.push(credentialRevocations.startRepushing(env.HDRCAP_NATS_REVOCATION_REPUSH_SECONDS * 1000));
  } else if (env.NATS_ACCOUNT_SEED) {
    logger.warn(
      "NATS credentials of removed agents cannot be revoked (they keep working until the account key changes): set NATS_OPERATOR_SIGNING_SEED and NATS_SYSTEM_CREDS, with nats-server on the full resolver",
    );
  }

  if (roles.has("ingest")) stops.push(await startIngester(nats, db.db, logger.child({ role: "ingest" }), metrics));
  if (roles.has("scheduler")) stops.push(startScheduler(db.db, createNudger(nats, db.db), logger.child({ role: "scheduler" })));
  if (roles.has("scheduler")) stops.push(startAgentUpgradeDriver(db.db, createUpgradeCommander(nats), logger.child({ role: "scheduler" })).stop);

  // The HTTP server always runs (health and metrics); the API routes are the api role.
  const app = createApp({
    db: db.db,
    nats,
    logger,
    metrics,
    natsAccountSeed: env.NATS_ACCOUNT_SEED,
    ...(credentialRevocations ? { credentialRevocations } : {}),
    agentNatsServers: (env.HDRCAP_AGENT_NATS_URL ?? env.NATS_URL).split(","),
    defaultRateLimit: { perSecond: env.HDRCAP_RATE_LIMIT_PER_SECOND, burst: env.HDRCAP_RATE_LIMIT_BURST },
  });
  if (roles.has("api")) stops.push(startAgentResponders(nats, db.db, logger.child({ role: "api" }), metrics));
  const tls = env.HDRCAP_TLS_CERT && env.HDRCAP_TLS_KEY ? { cert: readFileSync(env.HDRCAP_TLS_CERT), key: readFileSync(env.HDRCAP_TLS_KEY) } : undefined;
  const server: ServerType = await new Promise((resolve) => {
    const s = serve(
      { fetch: app.fetch, hostname: env.HOST, port: env.PORT, ...(tls ? { createServer: createHttpsServer as never, serverOptions: tls } : {}) },
      () => resolve(s),
    );
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : env.PORT;
  const url = `${tls ? "https" : "http"}://${env.HOST.includes(":") ? `[${env.HOST}]` : env.HOST}:${port}`;
  logger.info({ url, roles: [...roles] }, "control plane listening");
  return {
    url,
    port,
    db,
    nats,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const stop of stops.reverse()) await stop().catch((err) => logger.warn({ err }, "error while stopping"));
      await nats.drain().catch(() => {});
      await db.close();
    },
  };
}
