import { sql } from "kysely";
import type { Db } from "../client.ts";
import type { NewRecordRow } from "../tables/index.ts";

/** Multi-row insert in chunks small enough for the protocol's parameter limit. */
export async function insertRecordRows(db: Db, rows: NewRecordRow[]): Promise<void> {
  const PER_STATEMENT = 2000; // 23 columns each: well under 65,535 parameters
  for (let i = 0; i < rows.length; i += PER_STATEMENT) {
    await db.insertInto("records").values(rows.slice(i, i + PER_STATEMENT)).execute();
  }
}

export type StoreBatchOutcome = "stored" | "duplicate" | "unknown-capture";

export interface RecordBatchToStore {
  batchId: string;
  tenantId: string;
  captureId: string;
  agentId: string;
  /** Rows of this batch; their tenant, capture and agent ids must be the batch's. */
  rows: NewRecordRow[];
}

/**
 * One batch, exactly once, in ONE statement (atomic on its own, one round trip):
 * check that the capture is assigned to the agent in that tenant, claim the batch
 * id in `ingested_batches`, insert the rows from column arrays (unnest: 19
 * parameters whatever the batch size, one plan; as fast here as COPY inside a
 * transaction, ~2.5× multi-row VALUES) and count them on the assignment. A batch
 * id already claimed writes nothing.
 */
export async function storeRecordBatch(db: Db, batch: RecordBatchToStore): Promise<StoreBatchOutcome> {
  const { rows } = batch;
  const col = <T>(f: (r: NewRecordRow) => T) => rows.map(f);
  const str = (v: number | null | undefined) => (v === null || v === undefined ? null : String(v));
  const query = sql<{ assigned: boolean; fresh: boolean }>`
    with assignment as (
      select 1 from capture_agents
      where capture_id = ${batch.captureId} and agent_id = ${batch.agentId} and tenant_id = ${batch.tenantId}
    ), fresh as (
      insert into ingested_batches (batch_id, capture_id, agent_id, records)
      select ${batch.batchId}, ${batch.captureId}, ${batch.agentId}, ${rows.length}::int
      where exists (select 1 from assignment)
      on conflict (batch_id) do nothing
      returning 1
    ), inserted as (
      insert into records (ts, tenant_id, capture_id, agent_id, connection_id, kind, direction, role, src_ip, src_port, dst_ip, dst_port,
                           pid, comm, method, path, version, status, latency_ms, headers, header_names, header_bytes)
      select r.ts, ${batch.tenantId}, ${batch.captureId}, ${batch.agentId}, r.connection_id, r.kind, r.direction, r.role, r.src_ip, r.src_port,
             r.dst_ip, r.dst_port, r.pid, r.comm, r.method, r.path, r.version, r.status, r.latency_ms, r.headers::jsonb,
             array(select jsonb_array_elements_text(r.header_names::jsonb)), r.header_bytes
      from unnest(
        ${col((r) => (r.ts instanceof Date ? r.ts.toISOString() : String(r.ts)))}::timestamptz[],
        ${col((r) => r.connection_id)}::text[], ${col((r) => r.kind)}::text[], ${col((r) => r.direction)}::text[], ${col((r) => r.role)}::text[],
        ${col((r) => r.src_ip)}::inet[], ${col((r) => str(r.src_port))}::int[], ${col((r) => r.dst_ip)}::inet[], ${col((r) => str(r.dst_port))}::int[],
        ${col((r) => str(r.pid))}::int[], ${col((r) => r.comm)}::text[], ${col((r) => r.method ?? null)}::text[], ${col((r) => r.path ?? null)}::text[],
        ${col((r) => r.version)}::text[], ${col((r) => str(r.status))}::smallint[], ${col((r) => str(r.latency_ms))}::float8[],
        ${col((r) => JSON.stringify(r.headers))}::text[], ${col((r) => JSON.stringify(r.header_names))}::text[], ${col((r) => str(r.header_bytes))}::int[]
      ) as r(ts, connection_id, kind, direction, role, src_ip, src_port, dst_ip, dst_port, pid, comm, method, path, version, status, latency_ms,
             headers, header_names, header_bytes)
      where exists (select 1 from fresh)
    ), counted as (
      update capture_agents set stored = stored + ${rows.length}::int
      where capture_id = ${batch.captureId} and agent_id = ${batch.agentId} and exists (select 1 from fresh)
    )
    select exists (select 1 from assignment) as assigned, exists (select 1 from fresh) as fresh`;
  const [result] = (await query.execute(db)).rows;
  if (!result?.assigned) return "unknown-capture";
  return result.fresh ? "stored" : "duplicate";
}
