/**
 * Runs the control plane: connects to Postgres and NATS, serves the HTTP API, and
 * shuts down in order on SIGINT/SIGTERM (stop accepting, drain NATS, close the pool).
 */
import { createDb, type DbHandle } from "@hdrcap/db";
import { serve, type ServerType } from "@hono/node-server";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { createApp } from "./app.ts";
import type { Env } from "./env.ts";
import type { Logger } from "./logger.ts";

export interface RunningServer {
  url: string;
  port: number;
  db: DbHandle;
  nats: NatsConnection;
  close(): Promise<void>;
}

export async function connectNats(url: string, logger: Logger, name = "hdrcap-control-plane"): Promise<NatsConnection> {
  const nc = await connect({ servers: url, name, maxReconnectAttempts: -1, reconnectTimeWait: 500, timeout: 5000 });
  (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect" || s.type === "reconnect" || s.type === "error") logger.warn({ nats: s.type }, "NATS connection status");
    }
  })().catch(() => {});
  return nc;
}

export async function startServer(env: Env, logger: Logger): Promise<RunningServer> {
  const db = createDb(env.DATABASE_URL, { max: 20 });
  const nats = await connectNats(env.NATS_URL, logger);
  const app = createApp({ db: db.db, nats, logger });
  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: env.HOST, port: env.PORT }, () => resolve(s));
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : env.PORT;
  const url = `http://${env.HOST.includes(":") ? `[${env.HOST}]` : env.HOST}:${port}`;
  logger.info({ url, roles: env.HDRCAP_ROLES }, "control plane listening");
  return {
    url,
    port,
    db,
    nats,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await nats.drain().catch(() => {});
      await db.close();
    },
  };
}
