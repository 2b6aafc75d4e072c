/**
 * Bearer-key authentication for /v1/*: verifies the key, records last use, and
 * sets the caller's AuthContext. Failures are 401 with one generic message (the
 * precise reason goes to logs and metrics only).
 */
import { ApiError, type AuthContext } from "@hdrcap/api";
import { getConnInfo } from "@hono/node-server/conninfo";
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../context.ts";
import { tenantView } from "../services/views.ts";
import { enforceRateLimit } from "./rate-limit.ts";

export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}

function clientIp(c: Context<AppEnv>): string | null {
  try {
    return getConnInfo(c).remote.address ?? null;
  } catch {
    return null;
  }
}

/** Resolve the caller of this request, or explain why not. Shared by REST and tRPC. */
export async function authenticate(c: Context<AppEnv>): Promise<AuthContext | ApiError> {
  const deps = c.get("deps");
  const result = await deps.keyCache.verify(bearerToken(c.req.header("authorization")));
  if (!result.ok) {
    deps.metrics.authFailures.inc({ reason: result.reason });
    c.get("logger").info({ reason: result.reason }, "API key rejected");
    return new ApiError(
      "UNAUTHORIZED",
      result.reason === "missing" ? "missing API key: send Authorization: Bearer <key>" : "invalid, expired or revoked API key",
    );
  }
  deps.lastUsed.touch(result.key.id);
  return {
    tenant: tenantView(result.tenant),
    key: { id: result.key.id, name: result.key.name, prefix: result.key.prefix, scopes: result.key.scopes },
    rateLimit: result.key.rate_limit_per_second !== null && result.key.rate_limit_burst !== null ? { perSecond: result.key.rate_limit_per_second, burst: result.key.rate_limit_burst } : undefined,
    requestId: c.get("requestId"),
    ip: clientIp(c),
  };
}

export const requireApiKey = createMiddleware<AppEnv>(async (c, next) => {
  const auth = await authenticate(c);
  if (auth instanceof ApiError) throw auth;
  const limiter = c.get("deps").rateLimiter;
  enforceRateLimit(c, limiter, auth.key.id, auth.rateLimit ?? limiter.defaults, "key");
  c.set("auth", auth);
  await next();
});
