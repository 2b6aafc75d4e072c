/** Request id, per-request logger, access log line and HTTP metrics. */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../context.ts";
import { randomBase62 } from "../services/ids.ts";

export const requestContext = createMiddleware<AppEnv>(async (c, next) => {
  const incoming = c.req.header("x-request-id");
  const requestId = incoming && /^[A-Za-z0-9_.:-]{1,128}$/.test(incoming) ? incoming : `req_${randomBase62(16)}`;
  const deps = c.get("deps");
  const logger = deps.logger.child({ requestId });
  c.set("requestId", requestId);
  c.set("logger", logger);
  c.header("X-Request-Id", requestId);
  const started = performance.now();
  try {
    await next();
  } finally {
    const route = c.req.routePath || "unmatched";
    const seconds = (performance.now() - started) / 1000;
    deps.metrics.httpRequests.inc({ method: c.req.method, route, status: String(c.res.status) });
    deps.metrics.httpDuration.observe({ method: c.req.method, route }, seconds);
    logger.info({ method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(seconds * 1e4) / 10 }, "request");
  }
});
