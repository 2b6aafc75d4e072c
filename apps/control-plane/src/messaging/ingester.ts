/**
 * The ingest role: record batches from JetStream into Postgres, exactly once.
 * Any number of replicas share one durable pull consumer. Each batch is written
 * in one transaction together with its batch id in `ingested_batches`; the
 * message is acked only after commit, so a redelivery (crash, timeout) finds the
 * id and stores nothing twice. Poison messages (bad schema, wrong tenant, unknown
 * capture, oversize) are logged, counted and terminated, never redelivered forever.
 */
import { NATS_SUBJECTS, parseAgentSubject, RECORDS_CONSUMER, RECORDS_STREAM, recordBatchSchema, type HttpRecord } from "@hdrcap/api";
import { insertRecordRows, type Db, type NewRecordRow } from "@hdrcap/db";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { sql } from "kysely";
import type { Logger } from "../logger.ts";
import type { Metrics } from "../metrics.ts";

const MAX_MESSAGE_BYTES = 1024 * 1024;
const DUPLICATE_WINDOW_NS = 10 * 60 * 1e9;

/** Create or update the records stream and the shared durable consumer. */
export async function ensureRecordsStream(nc: NatsConnection): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const config = {
    name: RECORDS_STREAM,
    subjects: [NATS_SUBJECTS.allRecords],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    duplicate_window: DUPLICATE_WINDOW_NS,
    max_msg_size: MAX_MESSAGE_BYTES,
    max_age: 7 * 86_400 * 1e9,
  };
  try {
    await jsm.streams.info(RECORDS_STREAM);
    await jsm.streams.update(RECORDS_STREAM, config);
  } catch {
    await jsm.streams.add(config);
  }
  try {
    await jsm.consumers.info(RECORDS_STREAM, RECORDS_CONSUMER);
  } catch {
    await jsm.consumers.add(RECORDS_STREAM, {
      durable_name: RECORDS_CONSUMER,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: 30 * 1e9,
      max_ack_pending: 1000,
    });
  }
}

function directionOf(r: HttpRecord): "ingress" | "egress" {
  // The traced process sends requests as a client and responses as a server.
  if (r.role === "client") return r.kind === "request" ? "egress" : "ingress";
  if (r.role === "server") return r.kind === "response" ? "egress" : "ingress";
  return "ingress";
}

export function recordRow(r: HttpRecord, ids: { tenantId: string; captureId: string; agentId: string }): NewRecordRow {
  return {
    ts: new Date(r.ts),
    tenant_id: ids.tenantId,
    capture_id: ids.captureId,
    agent_id: ids.agentId,
    connection_id: r.connectionId,
    kind: r.kind,
    direction: directionOf(r),
    role: r.role,
    src_ip: r.src.ip,
    src_port: r.src.port,
    dst_ip: r.dst.ip,
    dst_port: r.dst.port,
    pid: r.pid,
    comm: r.comm,
    method: r.method,
    path: r.path,
    version: r.version,
    status: r.status,
    latency_ms: r.latencyMs,
    headers: r.headers.map((h) => [h.name, h.value]),
    header_names: [...new Set(r.headers.map((h) => h.name.toLowerCase()))],
    header_bytes: r.headerBytes,
  };
}

export type IngestOutcome = "stored" | "duplicate" | "rejected" | "retry";

/** Handle one message: returns what happened (and acks/naks/terms it accordingly). */
export async function ingestMessage(db: Db, msg: JsMsg, logger: Logger): Promise<IngestOutcome> {
  const reject = (reason: string): IngestOutcome => {
    logger.warn({ subject: msg.subject, seq: msg.seq, reason }, "rejected record batch");
    msg.term(); // no reason string: nats-server 2.9 ignores "+TERM <reason>"
    return "rejected";
  };
  const ids = parseAgentSubject(msg.subject);
  if (!ids || ids.verb !== "records") return reject("not a records subject");
  if (msg.data.length > MAX_MESSAGE_BYTES) return reject("oversized");
  let body: unknown;
  try {
    body = msg.json();
  } catch {
    return reject("not JSON");
  }
  const batch = recordBatchSchema.safeParse(body);
  if (!batch.success) return reject(`invalid batch: ${batch.error.issues.slice(0, 3).map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  const { batchId, captureId, records } = batch.data;

  try {
    const outcome = await db.transaction().execute(async (tx) => {
      const assignment = await tx
        .selectFrom("capture_agents")
        .select("capture_id")
        .where("capture_id", "=", captureId)
        .where("agent_id", "=", ids.agentId)
        .where("tenant_id", "=", ids.tenantId)
        .executeTakeFirst();
      if (!assignment) return "unknown-capture" as const;
      const fresh = await tx
        .insertInto("ingested_batches")
        .values({ batch_id: batchId, capture_id: captureId, agent_id: ids.agentId, records: records.length })
        .onConflict((oc) => oc.column("batch_id").doNothing())
        .returning("batch_id")
        .executeTakeFirst();
      if (!fresh) return "duplicate" as const;
      await insertRecordRows(tx, records.map((r) => recordRow(r, { tenantId: ids.tenantId, captureId, agentId: ids.agentId })));
      await tx
        .updateTable("capture_agents")
        .set({ stored: sql<string>`stored + ${records.length}` })
        .where("capture_id", "=", captureId)
        .where("agent_id", "=", ids.agentId)
        .execute();
      return "stored" as const;
    });
    if (outcome === "unknown-capture") return reject(`capture ${captureId} is not assigned to agent ${ids.agentId} of tenant ${ids.tenantId}`);
    msg.ack();
    return outcome;
  } catch (err) {
    logger.warn({ err, batchId }, "could not store record batch; will retry");
    msg.nak(1000);
    return "retry";
  }
}

export async function startIngester(nc: NatsConnection, db: Db, logger: Logger, metrics: Metrics, { concurrency = 4 } = {}): Promise<() => Promise<void>> {
  await ensureRecordsStream(nc);
  const js = jetstream(nc);
  const consumer = await js.consumers.get(RECORDS_STREAM, RECORDS_CONSUMER);
  let messages: ConsumerMessages | undefined;
  let stopping = false;
  const inFlight = new Set<Promise<void>>();

  const loop = (async () => {
    while (!stopping) {
      try {
        messages = await consumer.consume({ max_messages: concurrency * 8 });
        for await (const msg of messages) {
          while (inFlight.size >= concurrency) await Promise.race(inFlight);
          const p = ingestMessage(db, msg, logger).then((outcome) => {
            metrics.ingestBatches.inc({ result: outcome });
            if (outcome === "stored") metrics.ingestRecords.inc(safeCount(msg));
          });
          const tracked = p.finally(() => inFlight.delete(tracked));
          inFlight.add(tracked);
          if (stopping) break;
        }
      } catch (err) {
        if (stopping) break;
        logger.warn({ err }, "record consumer interrupted; resuming");
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  })();

  return async () => {
    stopping = true;
    await messages?.close().catch(() => {});
    await loop;
    await Promise.allSettled([...inFlight]);
  };
}

function safeCount(msg: JsMsg): number {
  try {
    return (msg.json() as { records: unknown[] }).records.length;
  } catch {
    return 0;
  }
}
