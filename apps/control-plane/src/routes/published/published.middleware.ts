/**
 * The serving side's gate: which API is asked for (404 draft/unknown, 410 retired),
 * which consumer calls it (only that API's live keys; verified keys come from the
 * replica's ConsumerKeyCache, not Postgres), and its rate limit.
 */
import { issuesFromZod, slugSchema, validationError } from "@hdrcap/api";
import { z } from "@hono/zod-openapi";
import type { PublishedApiConsumerRow } from "@hdrcap/db";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../../context.ts";
import { bearerToken } from "../../middleware/auth.ts";
import { enforceRateLimit } from "../../middleware/rate-limit.ts";
import { lifecycleHeaders, resolveServedApi, verifyConsumerKey, type ServedApi } from "../../services/published-apis.ts";

export interface ServedEnv {
  Variables: AppEnv["Variables"] & { served: ServedApi; consumer: PublishedApiConsumerRow };
}

/** Tenant slug and API name as the path carries them (checked here: this runs before route validation). */
export const servedApiParams = z.object({ tenant: slugSchema, name: slugSchema });

export const servedApi = createMiddleware<ServedEnv>(async (c, next) => {
  const params = servedApiParams.safeParse({ tenant: c.req.param("tenant"), name: c.req.param("name") });
  if (!params.success) throw validationError(issuesFromZod("param", params.error.issues));
  const served = await resolveServedApi(c.get("deps").db, params.data.tenant, params.data.name);
  for (const [name, value] of Object.entries(lifecycleHeaders(served.row))) c.header(name, value);
  c.set("served", served);
  await next();
});

export const consumerAccess = createMiddleware<ServedEnv>(async (c, next) => {
  const deps = c.get("deps");
  const consumer = await verifyConsumerKey((hash) => deps.consumerKeyCache.byHash(hash), c.get("served"), bearerToken(c.req.header("authorization")));
  const limit = consumer.rate_limit_per_second !== null && consumer.rate_limit_burst !== null ? { perSecond: consumer.rate_limit_per_second, burst: consumer.rate_limit_burst } : deps.rateLimiter.defaults;
  // Consumer ids (apc_…) never collide with tenant key ids (key_…) in the shared limiter.
  enforceRateLimit(c, deps.rateLimiter, consumer.id, limit, "consumer");
  c.set("consumer", consumer);
  await next();
});
