import { createDb, migrateToLatest, type DbHandle } from "@hdrcap/db";
import { createNatsAuthority, startNats, startPostgres, type NatsAuthority, type NatsServer, type PostgresServer } from "@hdrcap/local-services";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadEnv } from "../src/env.ts";
import { startServer, type RunningServer } from "../src/server.ts";
import { connectAgent, countStored, exactlyOnce, makeBatches, metricValue, publishBatches, seedCapture, storedBatches, type PlayedAgent } from "./ingest-harness.ts";

// Postgres stopped and started again while the ingester is busy: batches that
// fail are naked and retried, /readyz names Postgres meanwhile, and once it is
// back every record is stored exactly once. Own Postgres and nats-server.

describe("ingest through a Postgres outage", () => {
  let dir: string;
  let authority: NatsAuthority;
  let nats: NatsServer;
  let pg: PostgresServer;
  let db: DbHandle;
  let server: RunningServer | undefined;
  const agents: PlayedAgent[] = [];

  const startPg = (port?: number) => startPostgres({ dir: join(dir, "pg"), port, ephemeral: true });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "hdrcap-ingest-pg-"));
    chmodSync(dir, 0o755); // the postgres user must reach its data dir
    authority = await createNatsAuthority();
    [nats, pg] = await Promise.all([startNats({ dir: join(dir, "nats"), extraConfig: authority.serverConfig() }), startPg()]);
    db = createDb(pg.url, { max: 4 });
    await migrateToLatest(db.db);
  });
  afterAll(async () => {
    // Bounded: a close stuck on a broken connection must not hide the verdict.
    const bounded = (p: Promise<unknown> | undefined) => Promise.race([p?.catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
    await bounded(server?.close());
    for (const a of agents) await bounded(a.nc.close());
    await bounded(db?.close());
    await Promise.allSettled([nats?.stop(), pg?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it("retries through the outage, reports it in /readyz, and stores every record once", async () => {
    server = await startServer(
      loadEnv({ DATABASE_URL: pg.url, NATS_URL: nats.url, NATS_ACCOUNT_SEED: authority.account.seed, PORT: "0", HDRCAP_ROLES: "api,ingest", LOG_LEVEL: "silent" }),
      pino({ level: "silent" }),
    );
    const seed = await seedCapture(db.db, { agents: 2, name: "postgres restart" });
    agents.push(...(await Promise.all(seed.agentIds.map((id) => connectAgent(nats.url, authority.account.seed, seed.tenantId, id)))));
    const batches = agents.map((a) => makeBatches(a, seed.captureId, { batches: 400, records: 100, tag: "pg" }));
    const all = batches.flat();
    const publishing = Promise.all(agents.map((a, i) => publishBatches(a, batches[i]!)));

    await expect.poll(() => storedBatches(db.db, seed.captureId), { timeout: 20_000, interval: 20 }).toBeGreaterThan(100);
    await db.close();
    await pg.stop();
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { checks: { postgres: { ok: boolean } } }).checks.postgres.ok).toBe(false);
    await new Promise((r) => setTimeout(r, 1500)); // the ingester keeps pulling, failing and naking meanwhile
    pg = await startPg(pg.port);
    db = createDb(pg.url, { max: 4 });
    await expect.poll(async () => (await fetch(`${server!.url}/readyz`)).status, { timeout: 15_000, interval: 200 }).toBe(200);
    await publishing;

    await expect.poll(() => storedBatches(db.db, seed.captureId), { timeout: 30_000, interval: 100 }).toBe(all.length);
    await new Promise((r) => setTimeout(r, 300)); // a late redelivery would land now
    expect(await countStored(db.db, seed.captureId, all)).toEqual(exactlyOnce(all));
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metricValue(metrics, 'hdrcap_cp_ingest_batches_total{result="retry"}')).toBeGreaterThan(0);
  });
});
