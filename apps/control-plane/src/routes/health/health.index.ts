/**
 * /healthz: the process is up. /readyz: Postgres and NATS answer (503 naming the
 * failing dependency otherwise). /metrics: Prometheus text format.
 */
import { sql } from "kysely";
import { Hono } from "hono";
import type { AppEnv } from "../../context.ts";

const CHECK_TIMEOUT_MS = 1500;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref())]);
}

async function check(fn: () => Promise<unknown>): Promise<{ ok: true } | { ok: false; error: string }> {
  try {
    await withTimeout(fn(), CHECK_TIMEOUT_MS);
    return { ok: true };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

export const healthRouter = new Hono<AppEnv>()
  .get("/healthz", (c) => c.json({ status: "ok" }))
  .get("/readyz", async (c) => {
    const { db, nats } = c.get("deps");
    const [postgres, natsCheck] = await Promise.all([
      check(() => sql`select 1`.execute(db)),
      check(async () => {
        if (nats.isClosed()) throw new Error("connection closed");
        await nats.flush();
      }),
    ]);
    const ready = postgres.ok && natsCheck.ok;
    return c.json({ status: ready ? "ready" : "unavailable", checks: { postgres, nats: natsCheck } }, ready ? 200 : 503);
  })
  .get("/metrics", async (c) => {
    const { registry } = c.get("deps").metrics;
    return c.body(await registry.metrics(), 200, { "Content-Type": registry.contentType });
  });
