/**
 * Shared pieces of the ingest fault suites: a tenant with agents and one capture
 * per scenario seeded straight into Postgres, agents played over NATS with the
 * credentials enrollment would give them (confined to their own subjects), record
 * batches whose every record carries a unique id, a publisher that retries like an
 * agent (same batch id, same msgID) until JetStream takes the batch, and the
 * exactly-once count of what reached `records`.
 */
import { agentInboxPrefix, agentNatsPermissions, NATS_SUBJECTS, type HttpRecord, type RecordBatch } from "@hdrcap/api";
import type { Db } from "@hdrcap/db";
import { mintUserJwt } from "@hdrcap/local-services";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { createUser } from "@nats-io/nkeys";
import { connect, jwtAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { randomBytes } from "node:crypto";
import { sql } from "kysely";

const newId = (prefix: string) => `${prefix}_${randomBytes(8).toString("hex")}`;

export interface SeededCapture {
  tenantId: string;
  captureId: string;
  agentIds: string[];
}

/** A tenant (created once per database), `agents` agents and one capture assigned to all of them. */
export async function seedCapture(db: Db, { agents = 1, name = "ingest" }: { agents?: number; name?: string } = {}): Promise<SeededCapture> {
  const existing = await db.selectFrom("tenants").select("id").where("slug", "=", "ingest-faults").executeTakeFirst();
  const tenantId = existing?.id ?? newId("ten");
  if (!existing) await db.insertInto("tenants").values({ id: tenantId, slug: "ingest-faults", name: "Ingest faults" }).execute();
  const agentIds: string[] = [];
  for (let i = 0; i < agents; i++) {
    const id = newId("agt");
    await db
      .insertInto("agents")
      .values({ id, tenant_id: tenantId, machine_id: `machine-${id}`, hostname: `host-${id}`, facts: JSON.stringify({}) as never, labels: JSON.stringify({}) as never, nats_public_key: "U-none" })
      .execute();
    agentIds.push(id);
  }
  const captureId = newId("cap");
  await db
    .insertInto("captures")
    .values({
      id: captureId,
      tenant_id: tenantId,
      name,
      protocol: "http1",
      selector: JSON.stringify({}) as never,
      filter: JSON.stringify({}) as never,
      headers: JSON.stringify({}) as never,
      limits: JSON.stringify({}) as never,
      hash_key: "k",
      status: "running",
    } as never)
    .execute();
  for (const agentId of agentIds) {
    await db.insertInto("capture_agents").values({ capture_id: captureId, agent_id: agentId, tenant_id: tenantId } as never).execute();
  }
  return { tenantId, captureId, agentIds };
}

export interface PlayedAgent {
  tenantId: string;
  agentId: string;
  nc: NatsConnection;
  js: JetStreamClient;
}

/** Connect as the agent would after enrollment: its own key, a JWT allowing only its own subjects. */
export async function connectAgent(natsUrl: string, accountSeed: string, tenantId: string, agentId: string): Promise<PlayedAgent> {
  const user = createUser();
  const jwt = await mintUserJwt(accountSeed, agentId, user.getPublicKey(), agentNatsPermissions(tenantId, agentId));
  const nc = await connect({
    servers: natsUrl,
    authenticator: jwtAuthenticator(jwt, user.getSeed()),
    inboxPrefix: agentInboxPrefix(agentId),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 200,
  });
  return { tenantId, agentId, nc, js: jetstream(nc) };
}

/** One record; `recordId` lands in the `X-Record-Id` header (headers[1]) so stored rows can be counted one by one. */
export function syntheticRecord(recordId: string, i: number): HttpRecord {
  const request = i % 2 === 0;
  return {
    ts: new Date().toISOString(),
    connectionId: `c${i % 13}`,
    kind: request ? "request" : "response",
    role: "server",
    src: { ip: "10.1.0.7", port: 40000 + (i % 1000) },
    dst: { ip: "10.1.0.2", port: 8080 },
    pid: 4242,
    comm: "nginx",
    method: request ? "GET" : null,
    path: request ? `/api/items/${i}?page=2` : null,
    version: "HTTP/1.1",
    status: request ? null : 200,
    reason: request ? null : "OK",
    latencyMs: request ? null : 2.5,
    headers: [
      { name: "Host", value: "shop.example.test" },
      { name: "X-Record-Id", value: recordId },
      { name: "User-Agent", value: "curl/8.5.0" },
      { name: "Accept", value: "*/*" },
    ],
    headerBytes: 120,
    redacted: [],
  };
}

export function makeBatches(agent: { agentId: string }, captureId: string, { batches, records, tag }: { batches: number; records: number; tag: string }): RecordBatch[] {
  return Array.from({ length: batches }, (_, b) => {
    const batchId = `${agent.agentId}.${captureId}.${tag}.${b}`;
    return { v: 1, batchId, captureId, records: Array.from({ length: records }, (_, i) => syntheticRecord(`${batchId}#${i}`, i)) };
  });
}

/**
 * Publish with up to `window` batches awaiting their JetStream ack; a failed publish
 * (server down, timeout) is retried with the same msgID, as the agent does.
 */
export async function publishBatches(
  agent: PlayedAgent,
  batches: RecordBatch[],
  { window = 64, msgId = (b) => b.batchId }: { window?: number; msgId?: (b: RecordBatch) => string } = {},
): Promise<{ retries: number }> {
  const subject = NATS_SUBJECTS.records(agent.tenantId, agent.agentId);
  let next = 0;
  let retries = 0;
  const worker = async () => {
    while (next < batches.length) {
      const batch = batches[next++]!;
      const payload = JSON.stringify(batch);
      for (;;) {
        try {
          await agent.js.publish(subject, payload, { msgID: msgId(batch), timeout: 5000 });
          break;
        } catch {
          retries++;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
  return { retries };
}

export interface StoredCounts {
  rows: number;
  distinctRecords: number;
  duplicatedRecords: number;
  batches: number;
  batchRecords: number;
  missing: number;
  unexpected: number;
}

/**
 * Compare the multiset of record ids stored for a capture with the ids published:
 * every expected id exactly once, nothing else.
 */
export async function countStored(db: Db, captureId: string, published: RecordBatch[]): Promise<StoredCounts> {
  const { rows } = await sql<{ rid: string; n: string }>`
    select headers->1->>1 as rid, count(*) as n from records where capture_id = ${captureId} group by 1`.execute(db);
  const expected = new Set(published.flatMap((b) => b.records.map((r) => r.headers[1]!.value)));
  let total = 0;
  let duplicatedRecords = 0;
  let unexpected = 0;
  const seen = new Set<string>();
  for (const r of rows) {
    const n = Number(r.n);
    total += n;
    if (n > 1) duplicatedRecords++;
    if (expected.has(r.rid)) seen.add(r.rid);
    else unexpected++;
  }
  const batches = await db
    .selectFrom("ingested_batches")
    .select((eb) => [eb.fn.countAll<string>().as("n"), eb.fn.sum<string>("records").as("records")])
    .where("capture_id", "=", captureId)
    .executeTakeFirstOrThrow();
  return {
    rows: total,
    distinctRecords: rows.length,
    duplicatedRecords,
    batches: Number(batches.n),
    batchRecords: Number(batches.records ?? 0),
    missing: expected.size - seen.size,
    unexpected,
  };
}

/** What exactly-once looks like for `published`. */
export function exactlyOnce(published: RecordBatch[]): StoredCounts {
  const n = published.reduce((s, b) => s + b.records.length, 0);
  return { rows: n, distinctRecords: n, duplicatedRecords: 0, batches: published.length, batchRecords: n, missing: 0, unexpected: 0 };
}

export async function storedRows(db: Db, captureId: string): Promise<number> {
  const r = await db.selectFrom("records").select((eb) => eb.fn.countAll<string>().as("n")).where("capture_id", "=", captureId).executeTakeFirstOrThrow();
  return Number(r.n);
}

export async function storedBatches(db: Db, captureId: string): Promise<number> {
  const r = await db.selectFrom("ingested_batches").select((eb) => eb.fn.countAll<string>().as("n")).where("capture_id", "=", captureId).executeTakeFirstOrThrow();
  return Number(r.n);
}

/** A counter from a Prometheus text page, e.g. `hdrcap_cp_ingest_batches_total{result="stored"}`. */
export function metricValue(page: string, series: string): number {
  const line = page.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}
