/** What every request handler can reach through Hono's typed context. */
import type { AuthContext } from "@hdrcap/api";
import type { Db } from "@hdrcap/db";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "./logger.ts";
import type { Metrics } from "./metrics.ts";
import type { LastUsedTracker } from "./services/api-keys.ts";
import type { ApiKeyCache, ConsumerKeyCache } from "./services/key-cache.ts";
import type { RateLimit, RateLimiter } from "./services/rate-limiter.ts";
import type { ControlPlaneServices } from "./services/index.ts";
import type { CredentialRevocations } from "./messaging/credential-revocations.ts";

export interface AppDeps {
  db: Db;
  nats: NatsConnection;
  logger: Logger;
  metrics?: Metrics;
  /** Account seed signing agent NATS JWTs (enrollment needs it). */
  natsAccountSeed?: string;
  /** Pushes revoked agent credentials to nats-server; absent when not configured. */
  credentialRevocations?: CredentialRevocations;
  /** NATS URLs handed to agents at enrollment. */
  agentNatsServers?: string[];
  /** Default per-key rate limit (keys may carry their own). */
  defaultRateLimit?: RateLimit;
}

export interface AppEnv {
  Variables: {
    requestId: string;
    logger: Logger;
    auth: AuthContext;
    services: ControlPlaneServices;
    deps: AppDeps & { metrics: Metrics; lastUsed: LastUsedTracker; keyCache: ApiKeyCache; consumerKeyCache: ConsumerKeyCache; rateLimiter: RateLimiter };
  };
}
