/** Applies a key's token bucket to this request: rate headers, and 429 + Retry-After when empty. */
import { ApiError } from "@hdrcap/api";
import type { Context } from "hono";
import type { RateLimit, RateLimiter } from "../services/rate-limiter.ts";

export function enforceRateLimit(c: Context, limiter: RateLimiter, id: string, limit: RateLimit, who: "key" | "consumer"): void {
  const decision = limiter.take(id, limit);
  c.header("X-RateLimit-Limit", String(limit.perSecond));
  if (!decision.allowed) {
    c.header("Retry-After", String(decision.retryAfterSeconds));
    c.header("X-RateLimit-Remaining", "0");
    throw new ApiError("TOO_MANY_REQUESTS", `rate limit of ${limit.perSecond} requests/s (burst ${limit.burst}) exceeded for this ${who}; retry in ${decision.retryAfterSeconds}s`);
  }
  c.header("X-RateLimit-Remaining", String(decision.remaining));
}
