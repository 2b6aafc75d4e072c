import { createDb, migrateToLatest } from "@hdrcap/db";
import { startNats, startPostgres, type NatsServer, type PostgresServer } from "@hdrcap/local-services";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../src/app.ts";
import { createMetrics } from "../src/metrics.ts";

// Own Postgres and nats-server: this suite stops them.
describe("/readyz reflects the real dependencies", () => {
  let dir: string;
  let pg: PostgresServer;
  let nats: NatsServer;
  let nc: NatsConnection;
  let db: ReturnType<typeof createDb>;
  let app: ReturnType<typeof createApp>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "hdrcap-ready-"));
    chmodSync(dir, 0o755);
    [pg, nats] = await Promise.all([startPostgres({ dir: join(dir, "pg"), ephemeral: true }), startNats({ dir: join(dir, "nats") })]);
    db = createDb(pg.url, { max: 2 });
    await migrateToLatest(db.db);
    nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    app = createApp({ db: db.db, nats: nc, logger: pino({ level: "silent" }), metrics: createMetrics({ defaults: false }) });
  });
  afterAll(async () => {
    await nc?.close().catch(() => {});
    await db?.close().catch(() => {});
    await Promise.allSettled([pg?.stop(), nats?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const readyz = async () => {
    const res = await app.request("/readyz");
    return { status: res.status, body: (await res.json()) as any };
  };

  it("is ready when Postgres and NATS answer", async () => {
    const r = await readyz();
    expect(r.status).toBe(200);
    expect(r.body.checks).toEqual({ postgres: { ok: true }, nats: { ok: true } });
  });

  it("fails with 503 naming NATS when nats-server is stopped, and recovers", async () => {
    await nats.stop();
    const down = await readyz();
    expect(down.status).toBe(503);
    expect(down.body.checks.nats.ok).toBe(false);
    expect(down.body.checks.postgres.ok).toBe(true);
    expect((await app.request("/healthz")).status).toBe(200);

    nats = await startNats({ dir: join(dir, "nats"), port: nats.port });
    await expect.poll(async () => (await readyz()).status, { timeout: 15_000, interval: 250 }).toBe(200);
  });

  it("fails with 503 naming Postgres when Postgres is stopped", async () => {
    await pg.stop();
    const down = await readyz();
    expect(down.status).toBe(503);
    expect(down.body.checks.postgres.ok).toBe(false);
    expect(down.body.checks.nats.ok).toBe(true);
  });

  it("recovers when Postgres comes back, even after it died under queries in flight", async () => {
    pg = await startPostgres({ dir: join(dir, "pg"), ephemeral: true, port: pg.port });
    await expect.poll(async () => (await readyz()).status, { timeout: 15_000, interval: 250 }).toBe(200);

    const inFlight = [1, 2, 3].map(() => sql`select pg_sleep(5)`.execute(db.db).then(() => "finished", () => "failed"));
    await new Promise((r) => setTimeout(r, 300));
    await pg.stop();
    expect(await Promise.all(inFlight)).toEqual(["failed", "failed", "failed"]);
    pg = await startPostgres({ dir: join(dir, "pg"), ephemeral: true, port: pg.port });
    // A pooled connection that died may fail its next query once, but none may hang
    // or stay poisoned: soon every connection of the pool answers again.
    const round = () =>
      Promise.all([1, 2, 3, 4].map(() => Promise.race([sql<{ one: number }>`select 1 as one`.execute(db.db).then((r) => r.rows[0]?.one, () => "error"), new Promise((r) => setTimeout(() => r("hung"), 3000))])));
    await expect.poll(round, { timeout: 15_000, interval: 200 }).toEqual([1, 1, 1, 1]);
    expect(await round()).toEqual([1, 1, 1, 1]);
    await expect.poll(async () => (await readyz()).status, { timeout: 5000 }).toBe(200);
  });
});
