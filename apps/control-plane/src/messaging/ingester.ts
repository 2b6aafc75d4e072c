/**
 * The ingest role: record batches from JetStream into Postgres, exactly once.
 * Any number of replicas share one durable pull consumer. Each batch is written
 * in one transaction together with its batch id in `ingested_batches`; the
 * message is acked only after commit, so a redelivery (crash, timeout) finds the
 * id and stores nothing twice. Poison messages (bad schema, wrong tenant, unknown
 * capture, oversize) are logged, counted and terminated, never redelivered forever.
 */
import { NATS_SUBJECTS, parseAgentSubject, RECORDS_CONSUMER, RECORDS_STREAM, type HttpRecord } from "@hdrcap/api";
import { headerTerms, storeRecordBatch, type Db, type NewRecordRow } from "@hdrcap/db";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../logger.ts";
import type { Metrics } from "../metrics.ts";
import { checkRecordBatch } from "./record-batch-check.ts";

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

/** The row a record becomes (as `storeRecordBatch` stores it), for other writers: tests and benchmarks. */
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
    header_terms: headerTerms(r.headers),
    header_bytes: r.headerBytes,
  };
}

export type IngestOutcome = "stored" | "duplicate" | "rejected" | "retry";

/** Postgres errors that no retry can fix (bad data, violated constraint): the batch is poison. */
const isDataError = (err: unknown) => /^2[23]/.test(String((err as { code?: unknown }).code ?? ""));

/** Handle one message: returns what happened and how many records it carried (and acks/naks/terms it accordingly). */
export async function ingestMessage(db: Db, msg: JsMsg, logger: Logger): Promise<{ outcome: IngestOutcome; records: number }> {
  const reject = (reason: string) => {
    logger.warn({ subject: msg.subject, seq: msg.seq, reason }, "rejected record batch");
    msg.term(); // no reason string: nats-server 2.9 ignores "+TERM <reason>"
    return { outcome: "rejected" as const, records: 0 };
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
  // Checked in place, not parsed into a copy: the records go to storeRecordBatch as they are.
  const checked = checkRecordBatch(body);
  if (!checked.ok) return reject(`invalid batch: ${checked.issue}`);
  const { batchId, captureId, records } = checked.batch;

  let outcome: "stored" | "duplicate" | "unknown-capture";
  try {
    outcome = await storeRecordBatch(db, { batchId, tenantId: ids.tenantId, captureId, agentId: ids.agentId, records });
  } catch (err) {
    if (isDataError(err)) return reject(`Postgres refused the batch: ${(err as Error).message}`);
    logger.warn({ err, batchId }, "could not store record batch; will retry");
    msg.nak(1000);
    return { outcome: "retry", records: 0 };
  }
  if (outcome === "unknown-capture") return reject(`capture ${captureId} is not assigned to agent ${ids.agentId} of tenant ${ids.tenantId}`);
  msg.ack();
  return { outcome, records: outcome === "stored" ? records.length : 0 };
}

/** Consume record batches, `concurrency` at a time, until the returned stop function is called. */
export async function startIngester(nc: NatsConnection, db: Db, logger: Logger, metrics: Metrics, { concurrency = 8 } = {}): Promise<() => Promise<void>> {
  await ensureRecordsStream(nc);
  const js = jetstream(nc);
  const consumer = await js.consumers.get(RECORDS_STREAM, RECORDS_CONSUMER);
  let messages: ConsumerMessages | undefined;
  let stopping = false;
  const inFlight = new Set<Promise<void>>();

  const loop = (async () => {
    while (!stopping) {
      try {
        messages = await consumer.consume({ max_messages: concurrency * 4 });
        for await (const msg of messages) {
          while (inFlight.size >= concurrency) await Promise.race(inFlight);
          const tracked: Promise<void> = ingestMessage(db, msg, logger)
            .then(({ outcome, records }) => {
              metrics.ingestBatches.inc({ result: outcome });
              if (records) metrics.ingestRecords.inc(records);
            })
            .finally(() => inFlight.delete(tracked));
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
