/** Integration helpers: a records stream for one agent, and reading every batch back from it. */
import { NATS_SUBJECTS, recordBatchSchema, type RecordBatch } from "@hdrcap/api/nats";
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { randomBytes } from "node:crypto";

export const randomId = (prefix: string) => `${prefix}_${randomBytes(6).toString("hex")}`;

/** A file-backed stream capturing one agent's records subject (survives a server restart). */
export async function createRecordsStream(nc: NatsConnection, tenantId: string, agentId: string): Promise<string> {
  const name = `T_${randomBytes(6).toString("hex")}`.toUpperCase();
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name, subjects: [NATS_SUBJECTS.records(tenantId, agentId)], storage: StorageType.File, duplicate_window: 120_000_000_000 });
  return name;
}

/** Every message of the stream, parsed as a RecordBatch. */
export async function readBatches(nc: NatsConnection, stream: string): Promise<RecordBatch[]> {
  const jsm = await jetstreamManager(nc);
  const total = (await jsm.streams.info(stream)).state.messages;
  const out: RecordBatch[] = [];
  if (total === 0) return out;
  const consumer = await jetstream(nc).consumers.get(stream);
  const messages = await consumer.consume();
  for await (const m of messages) {
    out.push(recordBatchSchema.parse(m.json()));
    if (out.length >= total) break;
  }
  return out;
}

export async function streamMessageCount(nc: NatsConnection, stream: string): Promise<number> {
  return (await (await jetstreamManager(nc)).streams.info(stream)).state.messages;
}
