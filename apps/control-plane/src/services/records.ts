/**
 * The managed API of a capture's records: filtered, keyset-paginated listing,
 * constant-memory exports (NDJSON, CSV) and statistics. Every query is scoped to
 * the caller's tenant and the capture, and starts from the (capture_id, ts, id) index.
 */
import { ApiError, requireScope, type AuthContext, type Page, type RecordsFilter, type RecordStats, type StoredRecordView } from "@hdrcap/api";
import { headerNameTerm, headerValueTerm, isIndexedHeaderName, type Db, type RecordRow } from "@hdrcap/db";
import { sql, type SelectQueryBuilder } from "kysely";

export function storedRecordView(r: RecordRow): StoredRecordView {
  return {
    id: r.id,
    ts: r.ts.toISOString(),
    agentId: r.agent_id,
    connectionId: r.connection_id,
    kind: r.kind,
    role: r.role,
    src: { ip: r.src_ip, port: r.src_port },
    dst: { ip: r.dst_ip, port: r.dst_port },
    pid: r.pid,
    comm: r.comm,
    method: r.method,
    path: r.path,
    version: r.version,
    status: r.status,
    latencyMs: r.latency_ms,
    headers: (r.headers as [string, string][]).map(([name, value]) => ({ name, value })),
  };
}

interface RecordCursor {
  ts: string;
  id: string;
}

function encodeRecordCursor(c: RecordCursor): string {
  return Buffer.from(`${c.ts}|${c.id}`).toString("base64url");
}

const MAX_BIGINT = 9_223_372_036_854_775_807n;

/** A record id as Postgres can compare it: decimal digits within bigint. */
export function isRecordId(id: string): boolean {
  return /^\d{1,19}$/.test(id) && BigInt(id) <= MAX_BIGINT;
}

const FIRST_STORABLE_TIME = Date.parse("0001-01-01T00:00:00Z");

/** A time as toISOString() writes it, within the years timestamptz accepts in that form (0001–9999). */
function isCursorTime(ts: string): boolean {
  const t = Date.parse(ts);
  return /^\d{4}-/.test(ts) && t >= FIRST_STORABLE_TIME && new Date(t).toISOString() === ts;
}

function decodeRecordCursor(cursor: string | undefined): RecordCursor | undefined {
  if (!cursor) return undefined;
  const [ts, id] = Buffer.from(cursor, "base64url").toString("utf8").split("|");
  // Exactly what encodeRecordCursor writes: anything else could still fail in Postgres (bigint range, year 0, "1").
  if (!ts || !id || !isRecordId(id) || !isCursorTime(ts)) {
    throw new ApiError("BAD_REQUEST", "invalid query.cursor: not a cursor returned by this API", [{ path: "query.cursor", message: "not a cursor returned by this API" }]);
  }
  return { ts, id };
}

export async function assertCapture(db: Db, auth: AuthContext, captureId: string): Promise<void> {
  requireScope(auth.key.scopes, "captures:read");
  const capture = await db.selectFrom("captures").select("id").where("tenant_id", "=", auth.tenant.id).where("id", "=", captureId).executeTakeFirst();
  if (!capture) throw new ApiError("NOT_FOUND", `no capture ${captureId}`);
}

type RecordsQueryBuilder = SelectQueryBuilder<any, "records", any>;

function applyFilter(q: RecordsQueryBuilder, tenantId: string, captureId: string, f: RecordsFilter): RecordsQueryBuilder {
  q = q.where("capture_id", "=", captureId).where("tenant_id", "=", tenantId);
  if (f.since) q = q.where("ts", ">=", new Date(f.since));
  if (f.until) q = q.where("ts", "<", new Date(f.until));
  if (f.agent) q = q.where("agent_id", "=", f.agent);
  if (f.kind) q = q.where("kind", "=", f.kind);
  if (f.method) q = q.where("method", "=", f.method.toUpperCase());
  if (f.pathPrefix) q = q.where(sql<boolean>`starts_with(path, ${f.pathPrefix})`);
  if (f.status !== undefined) q = q.where("status", "=", f.status);
  // Both header filters are terms of the one GIN index on header_terms (packages/db header-terms.ts); a "name=value"
  // term also says that the name is there. A name holding "=" has no terms (filters take HTTP token names anyway).
  const names = [...(f.hasHeader ? [f.hasHeader] : []), ...(f.headers ?? []).map((h) => h.name)];
  if (!names.every(isIndexedHeaderName)) return q.where(sql<boolean>`false`);
  const terms = [...(f.hasHeader ? [headerNameTerm(f.hasHeader)] : []), ...(f.headers ?? []).map((h) => headerValueTerm(h.name, h.value))];
  if (terms.length) q = q.where(sql<boolean>`header_terms @> ${sql.val(terms)}::text[]`);
  return q;
}

function selectRows(db: Db, tenantId: string, captureId: string, f: RecordsFilter, after: RecordCursor | undefined, limit: number) {
  const order = f.order ?? "asc";
  let q = applyFilter(db.selectFrom("records") as unknown as RecordsQueryBuilder, tenantId, captureId, f)
    .selectAll()
    .select(sql<string>`host(src_ip)`.as("src_ip"))
    .select(sql<string>`host(dst_ip)`.as("dst_ip"))
    .orderBy("ts", order)
    .orderBy("id", order)
    .limit(limit);
  if (after) q = q.where(sql<boolean>`(ts, id) ${sql.raw(order === "asc" ? ">" : "<")} (${after.ts}::timestamptz, ${after.id}::bigint)`);
  return q.execute() as Promise<RecordRow[]>;
}

export async function listCaptureRecords(db: Db, auth: AuthContext, captureId: string, page: RecordsFilter & { limit: number; cursor?: string }): Promise<Page<StoredRecordView>> {
  await assertCapture(db, auth, captureId);
  const rows = await selectRows(db, auth.tenant.id, captureId, page, decodeRecordCursor(page.cursor), page.limit + 1);
  const items = rows.slice(0, page.limit);
  const last = items[items.length - 1];
  return {
    items: items.map(storedRecordView),
    nextCursor: rows.length > page.limit && last ? encodeRecordCursor({ ts: last.ts.toISOString(), id: last.id }) : null,
  };
}

/** Every matching record, fetched a page at a time (constant memory whatever the count). */
export async function* exportCaptureRecords(db: Db, auth: AuthContext, captureId: string, filter: RecordsFilter, pageSize = 2000): AsyncGenerator<StoredRecordView[]> {
  await assertCapture(db, auth, captureId);
  let after: RecordCursor | undefined;
  for (;;) {
    const rows = await selectRows(db, auth.tenant.id, captureId, filter, after, pageSize);
    if (rows.length === 0) return;
    yield rows.map(storedRecordView);
    const last = rows[rows.length - 1]!;
    after = { ts: last.ts.toISOString(), id: last.id };
    if (rows.length < pageSize) return;
  }
}

export const CSV_COLUMNS = ["id", "ts", "agentId", "connectionId", "kind", "role", "srcIp", "srcPort", "dstIp", "dstPort", "pid", "comm", "method", "path", "version", "status", "latencyMs", "headers"] as const;

function csvCell(v: unknown): string {
  const s = v === null || v === undefined ? "" : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** One CSV line; headers are "Name: value" lines joined by \n inside one quoted cell, in wire order. */
export function csvLine(r: StoredRecordView): string {
  const cells = [r.id, r.ts, r.agentId, r.connectionId, r.kind, r.role, r.src.ip, r.src.port, r.dst.ip, r.dst.port, r.pid, r.comm, r.method, r.path, r.version, r.status, r.latencyMs, r.headers.map((h) => `${h.name}: ${h.value}`).join("\n")];
  return cells.map(csvCell).join(",") + "\r\n";
}

export async function captureRecordStats(db: Db, auth: AuthContext, captureId: string, filter: RecordsFilter & { header?: string; bucketSeconds: number }): Promise<RecordStats> {
  await assertCapture(db, auth, captureId);
  const base = () => applyFilter(db.selectFrom("records") as unknown as RecordsQueryBuilder, auth.tenant.id, captureId, filter);
  const bucket = sql<Date>`to_timestamp(floor(extract(epoch from ts) / ${filter.bucketSeconds}) * ${filter.bucketSeconds})`;
  const [buckets, inventory, sizes, header] = await Promise.all([
    base().select(["agent_id"]).select(bucket.as("start")).select(sql<string>`count(*)`.as("n")).groupBy(["agent_id", sql`2`]).orderBy("agent_id").orderBy(sql`2`).execute() as Promise<{ agent_id: string; start: Date; n: string }[]>,
    sql<{ name: string; records: string; distinct_values: string }>`
      select lower(e->>0) as name, count(distinct r.id) as records, count(distinct e->>1) as distinct_values
      from (${base().select(["id", "headers"])}) r, jsonb_array_elements(r.headers) e
      group by 1 order by 2 desc, 1 limit 500`
      .execute(db)
      .then((r) => r.rows),
    base()
      .select(sql<number | null>`percentile_cont(0.5) within group (order by header_bytes)`.as("p50"))
      .select(sql<number | null>`percentile_cont(0.99) within group (order by header_bytes)`.as("p99"))
      .select(sql<string>`count(*)`.as("total"))
      .executeTakeFirst() as Promise<{ p50: number | null; p99: number | null; total: string } | undefined>,
    filter.header
      ? sql<{ value: string; n: string; distinct_values: string }>`
          select e->>1 as value, count(*) as n, count(*) over () as distinct_values
          from (${base().select(["headers"])}) r, jsonb_array_elements(r.headers) e
          where lower(e->>0) = ${filter.header.toLowerCase()}
          group by 1 order by 2 desc, 1 limit 20`
          .execute(db)
          .then((r) => r.rows)
      : Promise.resolve(null),
  ]);
  const byAgent = new Map<string, { start: string; count: number }[]>();
  for (const b of buckets) {
    const list = byAgent.get(b.agent_id) ?? [];
    list.push({ start: new Date(b.start).toISOString(), count: Number(b.n) });
    byAgent.set(b.agent_id, list);
  }
  return {
    total: Number(sizes?.total ?? 0),
    byAgent: [...byAgent].map(([agentId, list]) => ({ agentId, buckets: list })),
    headers: inventory.map((h) => ({ name: h.name, records: Number(h.records), distinctValues: Number(h.distinct_values) })),
    headerBytes: { p50: sizes?.p50 ?? null, p99: sizes?.p99 ?? null },
    header: filter.header
      ? { name: filter.header.toLowerCase(), distinctValues: Number(header?.[0]?.distinct_values ?? 0), top: (header ?? []).map((h) => ({ value: h.value, count: Number(h.n) })) }
      : null,
  };
}

/**
 * Live tail: yields matching records as they are stored, in id order per poll.
 * Ingest transactions commit out of id order (several batches in flight), so each
 * poll looks back over a window of ids below the highest one seen and skips the
 * ids it already sent; a record committed late within that window is still sent.
 */
export async function* tailCaptureRecords(
  db: Db,
  auth: AuthContext,
  captureId: string,
  filter: RecordsFilter,
  options: { afterId?: string; fromNow?: boolean; pollMs?: number; lookbackIds?: number; signal?: AbortSignal },
): AsyncGenerator<StoredRecordView[]> {
  await assertCapture(db, auth, captureId);
  const lookback = BigInt(options.lookbackIds ?? 100_000);
  let start: bigint;
  if (options.afterId !== undefined) start = BigInt(options.afterId);
  else if (options.fromNow ?? true) {
    const row = await sql<{ max: string | null }>`select max(id)::text as max from records where capture_id = ${captureId} and tenant_id = ${auth.tenant.id}`.execute(db);
    start = BigInt(row.rows[0]?.max ?? "0");
  } else start = 0n;
  let highest = start;
  const sent = new Set<string>();
  while (!options.signal?.aborted) {
    const floor = highest - lookback > start ? highest - lookback : start;
    const rows = (await applyFilter(db.selectFrom("records") as unknown as RecordsQueryBuilder, auth.tenant.id, captureId, { ...filter, order: "asc" })
      .selectAll()
      .select(sql<string>`host(src_ip)`.as("src_ip"))
      .select(sql<string>`host(dst_ip)`.as("dst_ip"))
      .where("id", ">", floor.toString())
      .orderBy("id")
      .limit(1000)
      .execute()) as RecordRow[];
    const fresh = rows.filter((r) => !sent.has(r.id));
    for (const r of fresh) {
      sent.add(r.id);
      if (BigInt(r.id) > highest) highest = BigInt(r.id);
    }
    for (const id of sent) if (BigInt(id) <= floor) sent.delete(id);
    if (fresh.length) yield fresh.map(storedRecordView);
    if (rows.length < 1000) await new Promise((r) => setTimeout(r, options.pollMs ?? 500));
  }
}
