/** What every request handler can reach through Hono's typed context. */
import type { AuthContext, Services } from "@hdrcap/api";
import type { Db } from "@hdrcap/db";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "./logger.ts";
import type { Metrics } from "./metrics.ts";
import type { LastUsedTracker } from "./services/api-keys.ts";

export interface AppDeps {
  db: Db;
  nats: NatsConnection;
  logger: Logger;
  metrics?: Metrics;
}

export interface AppEnv {
  Variables: {
    requestId: string;
    logger: Logger;
    auth: AuthContext;
    services: Services;
    deps: AppDeps & { metrics: Metrics; lastUsed: LastUsedTracker };
  };
}
