/**
 * createApp({ db, nats, logger }): the whole HTTP surface, built from services that
 * are passed in, so tests build the same app against real Postgres and NATS.
 */
import { ApiError, appRouter, type TrpcContext } from "@hdrcap/api";
import { swaggerUI } from "@hono/swagger-ui";
import { trpcServer } from "@hono/trpc-server";
import { TRPCError } from "@trpc/server";
import { bodyLimit } from "hono/body-limit";
import type { AppDeps } from "./context.ts";
import { authenticate, requireApiKey } from "./middleware/auth.ts";
import { enforceRateLimit } from "./middleware/rate-limit.ts";
import { notFound, onError } from "./middleware/errors.ts";
import { requestContext } from "./middleware/request-context.ts";
import { createMetrics } from "./metrics.ts";
import { apiKeysRouter } from "./routes/api-keys/api-keys.index.ts";
import { healthRouter } from "./routes/health/health.index.ts";
import { createRouter } from "./routes/openapi.ts";
import { tenantsRouter } from "./routes/tenants/tenants.index.ts";
import { whoamiRouter } from "./routes/whoami/whoami.index.ts";
import { LastUsedTracker } from "./services/api-keys.ts";
import { ApiKeyCache, ConsumerKeyCache } from "./services/key-cache.ts";
import { RateLimiter } from "./services/rate-limiter.ts";
import { createServices } from "./services/index.ts";
import { createNudger } from "./messaging/nudge.ts";
import { agentsRouter } from "./routes/agents/agents.index.ts";
import { capturesRouter } from "./routes/captures/captures.index.ts";
import { auditRouter } from "./routes/audit/audit.index.ts";
import { enrollmentRouter } from "./routes/enrollment/enrollment.index.ts";
import { installRouter } from "./routes/install/install.index.ts";
import { apisRouter } from "./routes/apis/apis.index.ts";
import { publishedRouter } from "./routes/published/published.index.ts";

export const API_VERSION = "0.1.0";
const MAX_BODY_BYTES = 1024 * 1024;

export function createApp(deps: AppDeps) {
  const metrics = deps.metrics ?? createMetrics();
  const lastUsed = new LastUsedTracker(deps.db, 60_000, (err) => deps.logger.warn({ err }, "could not record API key use"));
  const keyCache = new ApiKeyCache(deps.db, deps.nats);
  const consumerKeyCache = new ConsumerKeyCache(deps.db, deps.nats);
  // Buckets per replica, kept in step through NATS (see rate-limiter.ts for how far over the limit that allows).
  const rateLimiter = new RateLimiter(deps.defaultRateLimit ?? { perSecond: 100, burst: 200 }, deps.nats);
  const fullDeps = { ...deps, metrics, lastUsed, keyCache, consumerKeyCache, rateLimiter };
  const services = createServices(deps.db, {
    onKeyRevoked: (hash) => keyCache.revoked(hash),
    onConsumerKeyRevoked: (hash) => consumerKeyCache.revoked(hash),
    natsAccountSeed: deps.natsAccountSeed,
    agentNatsServers: deps.agentNatsServers ?? [],
    ...(deps.credentialRevocations ? { onAgentCredentialRevoked: (why) => deps.credentialRevocations!.push(why) } : {}),
    nudge: createNudger(deps.nats, deps.db),
    onNudgeError: (err) => deps.logger.warn({ err }, "could not nudge agents"),
  });

  const app = createRouter();
  app.onError(onError);
  app.notFound(notFound);
  app.use("*", async (c, next) => {
    c.set("deps", fullDeps);
    c.set("services", services);
    await next();
  });
  app.use("*", requestContext);
  app.use(
    "*",
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new ApiError("PAYLOAD_TOO_LARGE", `request body larger than ${MAX_BODY_BYTES} bytes`);
      },
    }),
  );

  app.route("/", healthRouter);

  const trpc = trpcServer({
    router: appRouter,
    createContext: async (_opts, c): Promise<TrpcContext> => {
      const auth = await authenticate(c as never);
      if (auth instanceof ApiError) return { auth: null, services, requestId: c.get("requestId") };
      try {
        // The same bucket as REST: a key cannot get around its limit by calling tRPC.
        enforceRateLimit(c as never, rateLimiter, auth.key.id, auth.rateLimit ?? rateLimiter.defaults, "key");
      } catch (err) {
        if (err instanceof ApiError) throw new TRPCError({ code: "TOO_MANY_REQUESTS", message: err.message, cause: err });
        throw err;
      }
      return { auth, services, requestId: c.get("requestId") };
    },
  });
  app.use("/trpc/*", async (c, next) => {
    const res = await trpc(c, next);
    // The adapter builds its own Response: carry over this request's headers (X-Request-Id, rate limit, Retry-After).
    for (const [name, value] of c.res.headers) if (name !== "content-type") res?.headers.set(name, value);
    return res;
  });

  // Agents enroll with an enrollment token, not an API key.
  app.route("/", enrollmentRouter);
  app.route("/", installRouter);
  // Published APIs are served outside /v1: their consumers hold consumer keys, not API keys.
  app.route("/", publishedRouter);
  app.use("/v1/*", async (c, next) => (c.req.path === "/v1/enroll" ? next() : requireApiKey(c, next)));
  app.route("/", whoamiRouter);
  app.route("/", apiKeysRouter);
  app.route("/", tenantsRouter);
  app.route("/", agentsRouter);
  app.route("/", capturesRouter);
  app.route("/", auditRouter);
  app.route("/", apisRouter);

  app.openAPIRegistry.registerComponent("securitySchemes", "Bearer", { type: "http", scheme: "bearer", description: "An hdrcap API key (hc_…)" });
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: { title: "hdrcap API", version: API_VERSION, description: "Fleet-wide capture of network header elements." },
  });
  app.get("/docs", swaggerUI({ url: "/openapi.json" }));
  return app;
}

export type App = ReturnType<typeof createApp>;
