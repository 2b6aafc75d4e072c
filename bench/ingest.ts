/**
 * `npm run bench -- ingest`: how fast record batches go from agents through
 * JetStream into Postgres via the real ingester, against what that same Postgres
 * can take at best, measured in one run.
 *
 * A private Postgres, a nats-server in operator mode and the control plane with
 * the ingest role only (a child process, `src/cli.ts serve`) are started. N agents,
 * each its own NATS connection with agent credentials, publish realistic HTTP
 * records (~600 bytes of JSON each) in batches through JetStream with msgIDs.
 *  - sustained: every agent publishes as fast as JetStream acks, ingesting meanwhile;
 *    records/s from the first publish to the last commit.
 *  - paced: the agents publish at a fixed share of that rate; lag = batch commit
 *    (`ingested_batches.ingested_at`) − its publish time, p50/p99.
 *  - ceiling: the same rows by plain COPY into an unindexed copy of `records`,
 *    COPY into `records` itself, and multi-row INSERTs into `records` (indexed).
 */
import { agentInboxPrefix, agentNatsPermissions, NATS_SUBJECTS, type HttpRecord, type RecordBatch } from "@hdrcap/api";
import { createDb, ensureRecordPartitions, migrateToLatest, type DbHandle, type NewRecordRow } from "@hdrcap/db";
import { createNatsAuthority, freePort, mintUserJwt, startNats, startPostgres, startProcess, waitUntil, type ManagedProcess } from "@hdrcap/local-services";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { createUser } from "@nats-io/nkeys";
import { connect, jwtAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { randomBytes, randomUUID } from "node:crypto";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { recordRow } from "../apps/control-plane/src/messaging/ingester.ts";
import { sleep } from "./lib/child.ts";
import { cpuSeconds, cpuTimes } from "./lib/proc.ts";
import { percentile } from "./lib/stats.ts";
import { renderMarkdown, renderText, type Table } from "./lib/table.ts";

const repoRoot = fileURLToPath(new URL("../", import.meta.url));

export interface IngestBenchOptions {
  quick: boolean;
  agents: number;
  batchSize: number;
  /** Batches each agent publishes in the sustained phase. */
  batchesPerAgent: number;
  /** Paced phase: share of the sustained rate, and its duration. */
  pacedShare: number;
  pacedSeconds: number;
  /** fsync=off, synchronous_commit=off (the test cluster's settings) instead of a durable cluster. */
  ephemeral: boolean;
}

export function parseIngestArgs(argv: string[]): IngestBenchOptions {
  const quick = argv.includes("--quick");
  const value = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return {
    quick,
    agents: Number(value("--agents") ?? (quick ? 4 : 8)),
    batchSize: Number(value("--batch") ?? 500),
    batchesPerAgent: Number(value("--batches") ?? (quick ? 40 : 200)),
    pacedShare: Number(value("--paced-share") ?? 0.5),
    pacedSeconds: Number(value("--paced-seconds") ?? (quick ? 4 : 15)),
    ephemeral: argv.includes("--ephemeral"),
  };
}

// ---- synthetic traffic ------------------------------------------------------------

const USER_AGENTS = [
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
  "okhttp/4.12.0",
  "python-requests/2.32.3",
];

/** A request or response header block as the agent would report it (~600 bytes of JSON). */
function httpRecord(i: number, ts: string): HttpRecord {
  const request = i % 2 === 0;
  const requestId = randomUUID();
  const headers = request
    ? [
        { name: "Host", value: "api.shop.example.com" },
        { name: "User-Agent", value: USER_AGENTS[i % USER_AGENTS.length]! },
        { name: "Accept", value: "application/json, text/plain, */*" },
        { name: "Accept-Language", value: "en-US,en;q=0.9" },
        { name: "Accept-Encoding", value: "gzip, deflate, br" },
        { name: "X-Request-Id", value: requestId },
        { name: "traceparent", value: `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-01` },
        { name: "Authorization", value: "[redacted]" },
      ]
    : [
        { name: "Content-Type", value: "application/json; charset=utf-8" },
        { name: "Content-Length", value: String(200 + (i % 5000)) },
        { name: "Date", value: new Date(ts).toUTCString() },
        { name: "Server", value: "nginx/1.22.1" },
        { name: "Cache-Control", value: "no-store" },
        { name: "X-Request-Id", value: requestId },
      ];
  return {
    ts,
    connectionId: `c${(i >> 1) % 512}`,
    kind: request ? "request" : "response",
    role: "server",
    src: { ip: `10.20.${(i >> 8) & 255}.${i & 255}`, port: 32768 + (i % 28000) },
    dst: { ip: "10.20.0.1", port: 8080 },
    pid: 31337,
    comm: "nginx",
    method: request ? (i % 10 === 0 ? "POST" : "GET") : null,
    path: request ? `/v2/catalog/items/${100000 + (i % 90000)}?include=prices,stock` : null,
    version: "HTTP/1.1",
    status: request ? null : i % 50 === 1 ? 404 : 200,
    reason: request ? null : i % 50 === 1 ? "Not Found" : "OK",
    latencyMs: request ? null : 0.5 + (i % 40) / 10,
    headers,
    headerBytes: headers.reduce((n, h) => n + h.name.length + h.value.length + 4, 2),
    redacted: request ? ["Authorization"] : [],
  };
}

function makeBatch(agentId: string, captureId: string, seq: number, size: number): RecordBatch {
  const ts = new Date().toISOString();
  return { v: 1, batchId: `${agentId}.${captureId}.${seq}`, captureId, records: Array.from({ length: size }, (_, i) => httpRecord(seq * size + i, ts)) };
}

/**
 * Agents run on other hosts, so generating their traffic must not eat this host's
 * CPU during a run: batches reuse a few pre-serialised record arrays. The batch id
 * carries the publish time, so lag is computed from `ingested_batches` alone.
 */
class BatchFactory {
  private readonly chunks: string[];
  constructor(size: number, variants = 16) {
    this.chunks = Array.from({ length: variants }, (_, v) => JSON.stringify(makeBatch("a", "c", v, size).records));
  }
  payload(agentId: string, captureId: string, seq: number): { batchId: string; json: string } {
    const batchId = `${agentId}.${captureId}.${seq}.${Date.now()}`;
    const json = `{"v":1,"batchId":${JSON.stringify(batchId)},"captureId":${JSON.stringify(captureId)},"records":${this.chunks[seq % this.chunks.length]}}`;
    return { batchId, json };
  }
}

// ---- the stack ------------------------------------------------------------------------

interface Agent {
  id: string;
  nc: NatsConnection;
  js: JetStreamClient;
  subject: string;
}

interface Stack {
  db: DbHandle;
  tenantId: string;
  controlPlane: ManagedProcess;
  natsPid: number;
  postgresPid: number;
  controlPlaneUrl: string;
  stop(): Promise<void>;
}

type BenchStack = Stack & { natsUrl: string; accountSeed: string };

async function startStack(dir: string, o: IngestBenchOptions): Promise<BenchStack> {
  const authority = await createNatsAuthority();
  const [pg, nats] = await Promise.all([
    startPostgres({ dir: path.join(dir, "pg"), ephemeral: o.ephemeral }),
    startNats({ dir: path.join(dir, "nats"), extraConfig: authority.serverConfig() }),
  ]);
  const db = createDb(pg.url, { max: 16 });
  await migrateToLatest(db.db);
  await ensureRecordPartitions(db.db, new Date(Date.now() - 86_400_000), 3); // as the scheduler keeps them
  const tenantId = `ten_${randomBytes(6).toString("hex")}`;
  await db.sql`insert into tenants (id, slug, name) values (${tenantId}, 'bench', 'Bench')`;
  const port = await freePort();
  // HDRCAP_BENCH_CP_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the control plane.
  const nodeArgs = process.env.HDRCAP_BENCH_CP_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
  const controlPlane = startProcess("control-plane", process.execPath, [...nodeArgs, "--import", "tsx", "apps/control-plane/src/cli.ts", "serve"], {
    cwd: repoRoot,
    logFile: path.join(dir, "control-plane.log"),
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
  const controlPlaneUrl = `http://127.0.0.1:${port}`;
  await waitUntil("control plane", async () => (await fetch(`${controlPlaneUrl}/healthz`)).ok, { alive: () => controlPlane.exitReason(), timeoutMs: 60_000 });
  return {
    db,
    tenantId,
    controlPlane,
    controlPlaneUrl,
    natsPid: nats.process.pid,
    postgresPid: pg.process.pid,
    natsUrl: nats.url,
    accountSeed: authority.account.seed,
    async stop() {
      await controlPlane.stop("SIGTERM");
      await db.close();
      await Promise.allSettled([nats.stop(), pg.stop()]);
    },
  };
}

/** A capture assigned to `n` fresh agents, each connected with its own agent credentials. */
async function seedAgents(stack: BenchStack, n: number, label: string): Promise<{ captureId: string; agents: Agent[] }> {
  const { sql } = stack.db;
  const captureId = `cap_${label}_${randomBytes(4).toString("hex")}`;
  await sql`insert into captures (id, tenant_id, name, protocol, selector, filter, headers, limits, hash_key, status)
            values (${captureId}, ${stack.tenantId}, ${label}, 'http1', '{}', '{}', '{}', '{}', 'k', 'running')`;
  const agents: Agent[] = [];
  for (let i = 0; i < n; i++) {
    const id = `agt_${label}_${i}_${randomBytes(3).toString("hex")}`;
    await sql`insert into agents (id, tenant_id, machine_id, hostname, labels, facts, nats_public_key)
              values (${id}, ${stack.tenantId}, ${id}, ${id}, '{}', '{}', 'U-bench')`;
    await sql`insert into capture_agents (capture_id, agent_id, tenant_id) values (${captureId}, ${id}, ${stack.tenantId})`;
    const user = createUser();
    const jwt = await mintUserJwt(stack.accountSeed, id, user.getPublicKey(), agentNatsPermissions(stack.tenantId, id));
    const nc = await connect({ servers: stack.natsUrl, authenticator: jwtAuthenticator(jwt, user.getSeed()), inboxPrefix: agentInboxPrefix(id) });
    agents.push({ id, nc, js: jetstream(nc), subject: NATS_SUBJECTS.records(stack.tenantId, id) });
  }
  return { captureId, agents };
}

/** Publish one agent's batches with up to 4 awaiting JetStream's ack; `pace` waits before each batch. */
async function publishAgent(agent: Agent, captureId: string, factory: BatchFactory, count: number, pace?: (seq: number) => Promise<void>): Promise<void> {
  let seq = 0;
  const worker = async () => {
    while (seq < count) {
      const mine = seq++;
      if (pace) await pace(mine);
      const { batchId, json } = factory.payload(agent.id, captureId, mine);
      await agent.js.publish(agent.subject, json, { msgID: batchId, timeout: 30_000 });
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}

async function storedBatches(db: DbHandle, captureId: string): Promise<number> {
  const [row] = (await db.sql`select count(*)::int as n from ingested_batches where capture_id = ${captureId}`) as unknown as [{ n: number }];
  return row.n;
}

/** CPU seconds of a process and its descendants (live ones, and those it reaped). */
function treeCpuSeconds(pid: number): number {
  let total = 0;
  try {
    const t = cpuTimes(pid);
    total += t.self + t.children;
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      for (const child of readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").split(" ").filter(Boolean)) total += treeCpuSeconds(Number(child));
    }
  } catch {
    /* exited meanwhile */
  }
  return total;
}

interface CpuSplit {
  controlPlane: number;
  nats: number;
  postgres: number;
  agents: number;
}

function cpuSplit(stack: BenchStack): CpuSplit {
  return {
    controlPlane: cpuSeconds([stack.controlPlane.pid]),
    nats: cpuSeconds([stack.natsPid]),
    postgres: treeCpuSeconds(stack.postgresPid),
    agents: cpuTimes("self").self,
  };
}

const cpuSince = (before: CpuSplit, after: CpuSplit): CpuSplit => ({
  controlPlane: after.controlPlane - before.controlPlane,
  nats: after.nats - before.nats,
  postgres: after.postgres - before.postgres,
  agents: after.agents - before.agents,
});

interface IngestRun {
  records: number;
  seconds: number;
  lagMs: number[];
  cpu: CpuSplit;
}

/** One phase: the agents publish (flat out, or paced at `recordsPerSecond`) until every batch is stored. */
async function ingestRun(stack: BenchStack, o: IngestBenchOptions, factory: BatchFactory, label: string, batchesPerAgent: number, recordsPerSecond?: number): Promise<IngestRun> {
  const { captureId, agents } = await seedAgents(stack, o.agents, label);
  const cpu0 = cpuSplit(stack);
  const started = Date.now();
  const interval = recordsPerSecond ? (1000 * o.batchSize * o.agents) / recordsPerSecond : 0;
  const pace = (k: number) => async (seq: number) => {
    const wait = started + (k / o.agents + seq) * interval - Date.now();
    if (wait > 0) await sleep(wait);
  };
  await Promise.all(agents.map((a, k) => publishAgent(a, captureId, factory, batchesPerAgent, interval ? pace(k) : undefined)));
  const total = batchesPerAgent * o.agents;
  const deadline = Date.now() + 300_000;
  while ((await storedBatches(stack.db, captureId)) < total) {
    if (Date.now() > deadline) throw new Error(`ingest stalled: ${await storedBatches(stack.db, captureId)}/${total} batches stored`);
    await sleep(50);
  }
  const cpu = cpuSince(cpu0, cpuSplit(stack));
  const batches = (await stack.db.sql`
    select batch_id, extract(epoch from ingested_at) * 1000 as committed_ms from ingested_batches where capture_id = ${captureId}`) as unknown as Array<{ batch_id: string; committed_ms: string }>;
  const lagMs = batches.map((b) => Number(b.committed_ms) - Number(b.batch_id.slice(b.batch_id.lastIndexOf(".") + 1)));
  const lastCommit = Math.max(...batches.map((b) => Number(b.committed_ms)));
  const [{ n }] = (await stack.db.sql`select count(*)::int as n from records where capture_id = ${captureId}`) as unknown as [{ n: number }];
  if (n !== total * o.batchSize) throw new Error(`stored ${n} records, published ${total * o.batchSize}`);
  await Promise.all(agents.map((a) => a.nc.close()));
  return { records: n, seconds: (lastCommit - started) / 1000, lagMs, cpu };
}

// ---- the ceiling: the same rows straight into Postgres ----------------------------------

const COPY_COLUMNS = [
  "ts", "tenant_id", "capture_id", "agent_id", "connection_id", "kind", "direction", "role", "src_ip", "src_port", "dst_ip", "dst_port",
  "pid", "comm", "method", "path", "version", "status", "latency_ms", "headers", "header_terms", "header_bytes",
] as const;

/** COPY text format of one value: \N for null, backslash escapes for \ tab newline CR. */
function copyField(column: (typeof COPY_COLUMNS)[number], v: unknown): string {
  if (v === null || v === undefined) return "\\N";
  let s: string;
  if (column === "headers") s = typeof v === "string" ? v : JSON.stringify(v);
  else if (column === "header_terms") s = `{${(v as string[]).map((x) => `"${x.replace(/[\\"]/g, "\\$&")}"`).join(",")}}`;
  else if (v instanceof Date) s = v.toISOString();
  else s = String(v);
  return s.replace(/[\\\t\n\r]/g, (c) => (c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r"));
}

/** One row as a line of `COPY <table> (<RECORD_COPY_COLUMNS>) FROM STDIN` (text format). */
function recordCopyLine(r: NewRecordRow): string {
  return COPY_COLUMNS.map((c) => copyField(c, r[c])).join("\t") + "\n";
}
const RECORD_COPY_COLUMNS: readonly string[] = COPY_COLUMNS;


/**
 * The rows the ingester would write (via its own mapping), as a few distinct
 * batches reused round-robin; the COPY text is encoded before the clock starts, so
 * the ceiling measures Postgres, not this process.
 */
class CeilingBatches {
  readonly rows: NewRecordRow[][];
  readonly copyText: string[];
  constructor(tenantId: string, readonly batches: number, readonly batchSize: number, variants = 16) {
    const ids = { tenantId, captureId: "cap_ceiling", agentId: "agt_ceiling" };
    this.rows = Array.from({ length: variants }, (_, v) => makeBatch(ids.agentId, ids.captureId, v, batchSize).records.map((r) => recordRow(r, ids)));
    this.copyText = this.rows.map((rows) => rows.map(recordCopyLine).join(""));
  }
  get records(): number {
    return this.batches * this.batchSize;
  }
}

/** COPY the batches into `table` over `streams` connections at once; records/s. */
async function copyInto(db: DbHandle, table: string, c: CeilingBatches, streams: number): Promise<number> {
  await Promise.all(Array.from({ length: streams }, () => db.sql`select 1`)); // connections open before the clock starts
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: streams }, async () => {
      const writable = await db.sql`copy ${db.sql(table)} (${db.sql(RECORD_COPY_COLUMNS as string[])}) from stdin`.writable();
      await new Promise<void>((resolve, reject) => {
        writable.on("error", reject);
        writable.on("finish", resolve);
        const pump = () => {
          while (next < c.batches) {
            if (!writable.write(c.copyText[next++ % c.copyText.length]!)) return void writable.once("drain", pump);
          }
          writable.end();
        };
        pump();
      });
    }),
  );
  return c.records / ((performance.now() - started) / 1000);
}

/** One multi-row INSERT per batch into `records`, `streams` at once; records/s. */
async function insertInto(db: DbHandle, c: CeilingBatches, streams: number): Promise<number> {
  // Rows as they are: postgres.js serialises the jsonb `headers` itself (a pre-serialised string would be stored
  // as one JSON string).
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: streams }, async () => {
      while (next < c.batches) {
        await db.sql`insert into records ${db.sql(c.rows[next++ % c.rows.length] as never, RECORD_COPY_COLUMNS as string[])}`;
      }
    }),
  );
  return c.records / ((performance.now() - started) / 1000);
}

// ---- the run ------------------------------------------------------------------------------

export async function runIngestBench(argv: string[]): Promise<void> {
  const o = parseIngestArgs(argv);
  const dir = mkdtempSync(path.join(os.tmpdir(), "hdrcap-bench-ingest-"));
  chmodSync(dir, 0o755); // the postgres user must reach its data dir
  const stack = await startStack(dir, o);
  try {
    const records = o.agents * o.batchesPerAgent * o.batchSize;
    console.log(`${o.agents} agents × ${o.batchesPerAgent} batches × ${o.batchSize} records (${records} records), Postgres ${o.ephemeral ? "ephemeral (fsync off)" : "durable (fsync on)"}`);
    const factory = new BatchFactory(o.batchSize);
    console.log(`~${Math.round(factory.payload("agt_x", "cap_x", 0).json.length / o.batchSize)} bytes of JSON per record`);
    // Warm-up: JIT, connection pools, first partition pages.
    await ingestRun(stack, o, factory, "warmup", Math.max(2, Math.round(o.batchesPerAgent / 10)));
    const sustained = await ingestRun(stack, o, factory, "sustained", o.batchesPerAgent);
    const rate = sustained.records / sustained.seconds;
    console.log(`sustained: ${fmt(rate)} records/s`);
    const pacedRate = rate * o.pacedShare;
    const pacedBatches = Math.max(2, Math.round((pacedRate * o.pacedSeconds) / o.batchSize / o.agents));
    const paced = await ingestRun(stack, o, factory, "paced", pacedBatches, pacedRate);

    const rows = new CeilingBatches(stack.tenantId, o.agents * o.batchesPerAgent, o.batchSize);
    await stack.db.sql`create table records_unindexed (like records including defaults)`;
    const pgBeforeCopy = treeCpuSeconds(stack.postgresPid);
    const copyUnindexed = await copyInto(stack.db, "records_unindexed", rows, 1);
    const copyPgUs = (1e6 * (treeCpuSeconds(stack.postgresPid) - pgBeforeCopy)) / rows.records;
    const copyUnindexedParallel = await copyInto(stack.db, "records_unindexed", rows, o.agents);
    const copyIndexed = await copyInto(stack.db, "records", rows, o.agents);
    const insertIndexed = await insertInto(stack.db, rows, 8);
    const ceiling = Math.max(copyUnindexed, copyUnindexedParallel);

    const ms = (v: number) => `${Math.round(v)} ms`;
    const table: Table = {
      columns: ["path", "records/s", "× COPY unindexed", "lag p50", "lag p99", "control plane CPU µs/record"],
      rows: [
        ["hdrcap ingest, flat out (JetStream → ingester → records)", fmt(rate), ratio(rate / ceiling), ms(percentile(sustained.lagMs, 0.5)), ms(percentile(sustained.lagMs, 0.99)), us(sustained)],
        [`hdrcap ingest, paced at ${Math.round(o.pacedShare * 100)} %`, fmt(paced.records / paced.seconds), "", ms(percentile(paced.lagMs, 0.5)), ms(percentile(paced.lagMs, 0.99)), us(paced)],
        ["COPY → unindexed copy of records, 1 stream", fmt(copyUnindexed), ratio(copyUnindexed / ceiling), "", "", ""],
        [`COPY → unindexed copy of records, ${o.agents} streams`, fmt(copyUnindexedParallel), ratio(copyUnindexedParallel / ceiling), "", "", ""],
        [`COPY → records (indexed, partitioned), ${o.agents} streams`, fmt(copyIndexed), ratio(copyIndexed / ceiling), "", "", ""],
        ["multi-row INSERT → records, 500 rows each, 8 at once", fmt(insertIndexed), ratio(insertIndexed / ceiling), "", "", ""],
      ],
    };
    console.log(renderText(table));
    const per = (v: number) => ((1e6 * v) / sustained.records).toFixed(1);
    const c = sustained.cpu;
    console.log(
      `\nCPU µs per record, flat out: control plane ${per(c.controlPlane)}, nats-server ${per(c.nats)}, Postgres ${per(c.postgres)}, agents (this process) ${per(c.agents)}; ` +
        `${((c.controlPlane + c.nats + c.postgres + c.agents) / sustained.seconds).toFixed(2)} of ${os.cpus().length} cores busy over ${sustained.seconds.toFixed(1)} s. ` +
        `Postgres for COPY (unindexed, 1 stream): ${copyPgUs.toFixed(1)} µs per record.`,
    );
    console.log(`\ntarget ingest ≥ 0.7× unindexed COPY: ${ratio(rate / ceiling)} — ${rate / ceiling >= 0.7 ? "met" : "not met"}`);
    console.log(`\nmachine: ${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}; ${new Date().toUTCString()}`);
    console.log(`\n${renderMarkdown(table)}`);
  } finally {
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString("en-US") : "—");
const ratio = (v: number) => `${v.toFixed(2)}×`;
const us = (r: IngestRun) => ((1e6 * r.cpu.controlPlane) / r.records).toFixed(1);
