import { RECORDS_CONSUMER, RECORDS_STREAM } from "@hdrcap/api";
import { createDb, migrateToLatest, type DbHandle } from "@hdrcap/db";
import { createNatsAuthority, freePort, startNats, startPostgres, startProcess, waitUntil, type ManagedProcess, type NatsAuthority, type NatsServer, type PostgresServer } from "@hdrcap/local-services";
import { jetstreamManager } from "@nats-io/jetstream";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadEnv } from "../src/env.ts";
import { startServer, type RunningServer } from "../src/server.ts";
import {
  connectAgent,
  countStored,
  exactlyOnce,
  makeBatches,
  metricValue,
  publishBatches,
  seedCapture,
  storedBatches,
  storedRows,
} from "./ingest-harness.ts";

// Exactly-once ingestion under faults: nats-server crashed and restarted under
// load, an ingesting control plane killed with SIGKILL, two replicas sharing the
// consumer, and redeliveries JetStream cannot dedupe (Postgres restarts: see
// ingest-postgres-outage.int.test.ts). Every record carries a unique
// id; each scenario compares the multiset of stored ids with what was published.
// Own Postgres and nats-server (operator mode): this suite stops them.

const repoRoot = resolve(import.meta.dirname, "../../..");

describe("ingest keeps every record exactly once through faults", () => {
  let dir: string;
  let authority: NatsAuthority;
  let nats: NatsServer;
  let pg: PostgresServer;
  let db: DbHandle;
  const cleanups: Array<() => Promise<unknown>> = [];

  const startNatsServer = (port?: number) => startNats({ dir: join(dir, "nats"), port, extraConfig: authority.serverConfig() });
  const startPg = () => startPostgres({ dir: join(dir, "pg"), ephemeral: true });
  const inProcessIngester = (roles = "ingest") =>
    startServer(
      loadEnv({ DATABASE_URL: pg.url, NATS_URL: nats.url, NATS_ACCOUNT_SEED: authority.account.seed, PORT: "0", HDRCAP_ROLES: roles, LOG_LEVEL: "silent" }),
      pino({ level: "silent" }),
    );
  const agentFor = async (tenantId: string, agentId: string) => {
    const a = await connectAgent(nats.url, authority.account.seed, tenantId, agentId);
    cleanups.push(() => a.nc.close());
    return a;
  };

  /** `node --import tsx src/cli.ts serve` with the ingest role only: a real process to kill. */
  async function childIngester(name: string): Promise<{ proc: ManagedProcess; url: string }> {
    const port = await freePort();
    const proc = startProcess(name, process.execPath, ["--import", "tsx", "apps/control-plane/src/cli.ts", "serve"], {
      cwd: repoRoot,
      logFile: join(dir, `${name}.log`),
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        DATABASE_URL: pg.url,
        NATS_URL: nats.url,
        NATS_ACCOUNT_SEED: authority.account.seed,
        PORT: String(port),
        HDRCAP_ROLES: "ingest",
        LOG_LEVEL: "warn",
      },
    });
    cleanups.push(() => proc.stop("SIGKILL"));
    const url = `http://127.0.0.1:${port}`;
    await waitUntil(name, async () => (await fetch(`${url}/healthz`)).ok, { alive: () => proc.exitReason(), timeoutMs: 30_000 });
    return { proc, url };
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "hdrcap-ingest-faults-"));
    chmodSync(dir, 0o755); // the postgres user must reach its data dir
    authority = await createNatsAuthority();
    [nats, pg] = await Promise.all([startNatsServer(), startPg()]);
    db = createDb(pg.url, { max: 4 });
    await migrateToLatest(db.db);
  });
  afterAll(async () => {
    // Bounded: a cleanup stuck on a broken connection must not hide the verdict.
    for (const c of cleanups.reverse()) await Promise.race([c().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
    await db?.close().catch(() => {});
    await Promise.allSettled([nats?.stop(), pg?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it("stores batches published before and after a nats-server crash exactly once", async () => {
    const server = await inProcessIngester();
    cleanups.push(() => server.close());
    const seed = await seedCapture(db.db, { agents: 1, name: "nats restart" });
    const agent = await agentFor(seed.tenantId, seed.agentIds[0]!);
    const before = makeBatches(agent, seed.captureId, { batches: 500, records: 100, tag: "before" });
    const after = makeBatches(agent, seed.captureId, { batches: 300, records: 100, tag: "after" });

    await publishBatches(agent, before);
    await expect.poll(() => storedBatches(db.db, seed.captureId), { timeout: 20_000, interval: 20 }).toBeGreaterThan(50);
    const storedAtCrash = await storedBatches(db.db, seed.captureId);
    await nats.process.stop("SIGKILL");
    nats = await startNatsServer(nats.port);
    const { retries } = await publishBatches(agent, after);

    const all = [...before, ...after];
    await expect.poll(() => storedBatches(db.db, seed.captureId), { timeout: 30_000, interval: 100 }).toBe(all.length);
    await new Promise((r) => setTimeout(r, 300)); // a late redelivery would land now
    expect(await countStored(db.db, seed.captureId, all)).toEqual(exactlyOnce(all));
    console.info(`nats restart: ${storedAtCrash}/${before.length} batches stored at the crash, ${retries} publish retries, ${all.length * 100} records stored once`);
    await server.close();
  });

  it("loses and duplicates nothing when an ingesting control plane is killed with SIGKILL", async () => {
    const seed = await seedCapture(db.db, { agents: 2, name: "kill -9" });
    const agents = await Promise.all(seed.agentIds.map((id) => agentFor(seed.tenantId, id)));
    const batches = agents.map((a) => makeBatches(a, seed.captureId, { batches: 700, records: 100, tag: "kill" }));
    const all = batches.flat();
    // Queue everything first so the victim is saturated when it dies.
    await Promise.all(agents.map((a, i) => publishBatches(a, batches[i]!)));

    const victim = await childIngester("cp-victim");
    await expect.poll(() => storedBatches(db.db, seed.captureId), { timeout: 30_000, interval: 10 }).toBeGreaterThan(200);
    await victim.proc.stop("SIGKILL");
    const storedAtKill = await storedBatches(db.db, seed.captureId);
    expect(storedAtKill).toBeLessThan(all.length);

    const successor = await childIngester("cp-successor");
    await expect.poll(() => storedBatches(db.db, seed.captureId), { timeout: 40_000, interval: 100 }).toBe(all.length);
    await new Promise((r) => setTimeout(r, 300));
    expect(await countStored(db.db, seed.captureId, all)).toEqual(exactlyOnce(all));
    const metrics = await (await fetch(`${successor.url}/metrics`)).text();
    const successorStored = metricValue(metrics, 'hdrcap_cp_ingest_batches_total{result="stored"}');
    const duplicates = metricValue(metrics, 'hdrcap_cp_ingest_batches_total{result="duplicate"}');
    expect(successorStored).toBe(all.length - storedAtKill);
    console.info(`kill -9: victim stored ${storedAtKill}/${all.length} batches, successor ${successorStored} (+${duplicates} redelivered after commit, skipped)`);
    await successor.proc.stop("SIGTERM");
  });

  it("shares the work between two replicas and stores every batch once", async () => {
    const [a, b] = await Promise.all([inProcessIngester(), inProcessIngester()]);
    cleanups.push(() => a.close(), () => b.close());
    const seed = await seedCapture(db.db, { agents: 4, name: "two replicas" });
    const agents = await Promise.all(seed.agentIds.map((id) => agentFor(seed.tenantId, id)));
    const batches = agents.map((ag) => makeBatches(ag, seed.captureId, { batches: 250, records: 100, tag: "replicas" }));
    const all = batches.flat();
    await Promise.all(agents.map((ag, i) => publishBatches(ag, batches[i]!)));

    await expect.poll(() => storedBatches(db.db, seed.captureId), { timeout: 30_000, interval: 100 }).toBe(all.length);
    await new Promise((r) => setTimeout(r, 300));
    expect(await countStored(db.db, seed.captureId, all)).toEqual(exactlyOnce(all));
    const stored = await Promise.all([a, b].map(async (s) => metricValue(await (await fetch(`${s.url}/metrics`)).text(), 'hdrcap_cp_ingest_batches_total{result="stored"}')));
    expect(stored[0]! + stored[1]!).toBe(all.length);
    expect(stored[0]).toBeGreaterThan(0);
    expect(stored[1]).toBeGreaterThan(0);
    console.info(`two replicas: ${stored[0]} + ${stored[1]} batches`);
    await Promise.all([a.close(), b.close()]);
  });

  it("stores nothing twice when a batch comes back under another message id", async () => {
    const server = await inProcessIngester();
    cleanups.push(() => server.close());
    const seed = await seedCapture(db.db, { agents: 1, name: "late duplicates" });
    const agent = await agentFor(seed.tenantId, seed.agentIds[0]!);
    const batches = makeBatches(agent, seed.captureId, { batches: 50, records: 100, tag: "dup" });
    await publishBatches(agent, batches);
    await expect.poll(() => storedBatches(db.db, seed.captureId), { timeout: 30_000, interval: 50 }).toBe(batches.length);
    // Beyond JetStream's window: same batch ids, new message ids (so the stream keeps them).
    await publishBatches(agent, batches, { msgId: (b) => `${b.batchId}.resent` });
    const jsm = await jetstreamManager(server.nats);
    await expect
      .poll(async () => {
        const info = await jsm.consumers.info(RECORDS_STREAM, RECORDS_CONSUMER);
        return info.num_pending + info.num_ack_pending;
      }, { timeout: 30_000 })
      .toBe(0);
    expect(await countStored(db.db, seed.captureId, batches)).toEqual(exactlyOnce(batches));
    expect(await storedRows(db.db, seed.captureId)).toBe(5000);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metricValue(metrics, 'hdrcap_cp_ingest_batches_total{result="duplicate"}')).toBe(batches.length);
    await server.close();
  });
});
