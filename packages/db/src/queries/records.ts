import { sql } from "kysely";
import type { Db } from "../client.ts";
import { headerTerms, isIndexedHeaderName } from "../header-terms.ts";
import type { NewRecordRow } from "../tables/index.ts";

/** Multi-row insert in chunks small enough for the protocol's parameter limit. */
export async function insertRecordRows(db: Db, rows: NewRecordRow[]): Promise<void> {
  const PER_STATEMENT = 2000; // 23 columns each: well under 65,535 parameters
  for (let i = 0; i < rows.length; i += PER_STATEMENT) {
    await db.insertInto("records").values(rows.slice(i, i + PER_STATEMENT)).execute();
  }
}

export type StoreBatchOutcome = "stored" | "duplicate" | "unknown-capture";

/** A record as agents publish it (`httpRecordSchema` in packages/api), already validated. */
export interface WireRecord {
  ts: string;
  connectionId: string;
  kind: string;
  role: string;
  src: { ip: string; port: number };
  dst: { ip: string; port: number };
  pid: number;
  comm: string;
  method: string | null;
  path: string | null;
  version: string;
  status: number | null;
  latencyMs: number | null;
  headers: ReadonlyArray<{ name: string; value: string }>;
  headerBytes: number;
}

export interface RecordBatchToStore {
  batchId: string;
  tenantId: string;
  captureId: string;
  agentId: string;
  records: ReadonlyArray<WireRecord>;
}

/** The stored columns of a record, in the order both batch formats below carry them (all text until cast). */
const FIELDS = 18;

/** The record's stored values as text, `nil` standing for NULL, with its header terms (`header_terms`) as the batch format writes them. */
function recordFields<N>(r: WireRecord, nil: N, terms: string): Array<string | N> {
  // headers as stored: [[name, value], ...] as JSON text
  let headers = "[";
  for (let k = 0; k < r.headers.length; k++) {
    const h = r.headers[k]!;
    headers += `${k ? "," : ""}[${JSON.stringify(h.name)},${JSON.stringify(h.value)}]`;
  }
  return [
    r.ts, r.connectionId, r.kind, r.role, r.src.ip, String(r.src.port), r.dst.ip, String(r.dst.port), String(r.pid), r.comm,
    r.method ?? nil, r.path ?? nil, r.version, r.status === null ? nil : String(r.status), r.latencyMs === null ? nil : String(r.latencyMs),
    `${headers}]`, terms, String(r.headerBytes),
  ];
}

// Separators of the batch text: ASCII record separator between records, unit separator between fields, and
// group separator for NULL (string_to_array turns a field equal to it into NULL).
const RECORD_SEP = "\x1e";
const FIELD_SEP = "\x1f";
const NULL_FIELD = "\x1d";
/** Fields that carry strings as received: the others are numbers or JSON text (which escapes control characters). */
const RAW_TEXT_FIELDS = [0, 1, 2, 3, 4, 6, 9, 10, 11, 12];
const SEPARATOR = /[\x1d-\x1f]/;
const NULLABLE_FIELDS = [10, 11, 13, 14];
/** Between the header terms of one record (ASCII file separator): Postgres splits them into the text[] itself. */
const TERM_SEP = "\x1c";
const TERM_SEPARATOR = /[\x1c-\x1f]/;

/**
 * The record's header terms (header-terms.ts, same order as `headerTerms`) joined by TERM_SEP, built here
 * without the intermediate array; undefined when a term holds one of the batch text's separators.
 */
function separatedTerms(headers: WireRecord["headers"]): string | undefined {
  let terms = "";
  const names = new Set<string>();
  for (let k = 0; k < headers.length; k++) {
    const h = headers[k]!;
    if (!isIndexedHeaderName(h.name)) continue;
    const name = h.name.toLowerCase();
    const pair = `${name}=${h.value}`;
    if (TERM_SEPARATOR.test(pair)) return undefined;
    // a name always precedes its first pair, so only a name can be the first term
    if (!names.has(name)) {
      terms += names.size ? TERM_SEP + name : name;
      names.add(name);
    }
    terms += TERM_SEP + pair;
  }
  return terms;
}

/** The record's header terms as a text[] literal, for the unnest format. */
function termsLiteral(headers: WireRecord["headers"]): string {
  return `{${headerTerms(headers).map((t) => `"${t.replace(/[\\"]/g, "\\$&")}"`).join(",")}}`;
}

/**
 * The batch as one text: fields separated by FIELD_SEP, records by RECORD_SEP. Postgres (≥ 14) splits
 * it with string_to_table / string_to_array, which costs it less than reading 18 array literals, and
 * us less than building them (no per-element quoting). Undefined when a value holds a separator or
 * the NULL mark itself (agents never send control characters, but a header name on the wire can).
 */
function separatedText(records: ReadonlyArray<WireRecord>): string | undefined {
  const lines = new Array<string>(records.length);
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    const terms = separatedTerms(r.headers);
    if (terms === undefined) return undefined;
    const fields = recordFields(r, null, terms);
    for (const f of RAW_TEXT_FIELDS) {
      const v = fields[f];
      if (v !== null && SEPARATOR.test(v!)) return undefined;
    }
    for (const f of NULLABLE_FIELDS) fields[f] ??= NULL_FIELD;
    lines[i] = fields.join(FIELD_SEP);
  }
  return lines.join(RECORD_SEP);
}

/** The same columns as text arrays, for the rare batch `separatedText` cannot carry. */
function fieldArrays(records: ReadonlyArray<WireRecord>): Array<Array<string | null>> {
  const columns = Array.from({ length: FIELDS }, () => new Array<string | null>(records.length));
  records.forEach((r, i) => recordFields(r, null, termsLiteral(r.headers)).forEach((v, f) => (columns[f]![i] = v)));
  return columns;
}

/**
 * One batch, exactly once, in ONE statement (atomic on its own, one round trip):
 * check that the capture is assigned to the agent in that tenant, claim the batch
 * id in `ingested_batches`, insert the rows and count them on the assignment. A
 * batch id already claimed writes nothing.
 *
 * The rows travel as one text parameter whatever the batch size (one plan), split
 * and cast by Postgres; a batch whose values hold the separators goes as 18 text
 * arrays instead (unnest). Measured against the alternatives (docs/benchmarks.md,
 * Ingest): handing Postgres the batch's JSON (json_to_recordset) cost it ~15 µs
 * more per record than it saved the control plane; typed arrays cost both sides
 * more (quoting, array literal parsing). A value Postgres cannot read (time,
 * address, number out of range) fails the statement with SQLSTATE class 22, a row
 * the table's checks refuse with class 23.
 */
export async function storeRecordBatch(db: Db, batch: RecordBatchToStore): Promise<StoreBatchOutcome> {
  const count = batch.records.length;
  const text = separatedText(batch.records);
  const rows =
    text !== undefined
      ? sql`(select f[1] as ts, f[2] as connection_id, f[3] as kind, f[4] as role, f[5] as src_ip, f[6] as src_port, f[7] as dst_ip,
                    f[8] as dst_port, f[9] as pid, f[10] as comm, f[11] as method, f[12] as path, f[13] as version, f[14] as status,
                    f[15] as latency_ms, f[16] as headers, string_to_array(f[17], chr(28)) as header_terms, f[18] as header_bytes
             from string_to_table(${text}::text, chr(30)) as line, string_to_array(line, chr(31), chr(29)) as f)`
      : sql`unnest(${sql.join(fieldArrays(batch.records).map((column) => sql`${column}::text[]`))})`;
  const query = sql<{ assigned: boolean; fresh: boolean }>`
    with assignment as (
      select 1 from capture_agents
      where capture_id = ${batch.captureId} and agent_id = ${batch.agentId} and tenant_id = ${batch.tenantId}
    ), fresh as (
      insert into ingested_batches (batch_id, capture_id, agent_id, records)
      select ${batch.batchId}, ${batch.captureId}, ${batch.agentId}, ${count}::int
      where exists (select 1 from assignment)
      on conflict (batch_id) do nothing
      returning 1
    ), inserted as (
      insert into records (ts, tenant_id, capture_id, agent_id, connection_id, kind, direction, role, src_ip, src_port, dst_ip, dst_port,
                           pid, comm, method, path, version, status, latency_ms, headers, header_terms, header_bytes)
      select r.ts::timestamptz, ${batch.tenantId}, ${batch.captureId}, ${batch.agentId}, r.connection_id, r.kind,
             -- the traced process sends requests as a client and responses as a server
             case r.role when 'client' then case r.kind when 'request' then 'egress' else 'ingress' end
                         when 'server' then case r.kind when 'response' then 'egress' else 'ingress' end
                         else 'ingress' end,
             r.role, r.src_ip::inet, r.src_port::int, r.dst_ip::inet, r.dst_port::int, r.pid::int, r.comm, r.method, r.path, r.version,
             r.status::smallint, r.latency_ms::float8, r.headers::jsonb, ${text !== undefined ? sql`r.header_terms` : sql`r.header_terms::text[]`}, r.header_bytes::int
      from ${rows} as r(ts, connection_id, kind, role, src_ip, src_port, dst_ip, dst_port, pid, comm, method, path, version, status,
                        latency_ms, headers, header_terms, header_bytes)
      where exists (select 1 from fresh)
    ), counted as (
      update capture_agents set stored = stored + ${count}::int
      where capture_id = ${batch.captureId} and agent_id = ${batch.agentId} and exists (select 1 from fresh)
    )
    select exists (select 1 from assignment) as assigned, exists (select 1 from fresh) as fresh`;
  const [result] = (await query.execute(db)).rows;
  if (!result?.assigned) return "unknown-capture";
  return result.fresh ? "stored" : "duplicate";
}
