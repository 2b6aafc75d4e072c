import { createDb, migrateToLatest } from "@hdrcap/db";
import { startNats, startPostgres, type NatsServer, type PostgresServer } from "@hdrcap/local-services";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
});
