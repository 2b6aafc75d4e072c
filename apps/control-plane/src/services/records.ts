/** Reading a capture's stored records (the managed records API grows from here). */
import { ApiError, requireScope, type AuthContext, type Page, type StoredRecordView } from "@hdrcap/api";
import type { Db, RecordRow } from "@hdrcap/db";
import { sql } from "kysely";

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

function decodeRecordCursor(cursor: string | undefined): RecordCursor | undefined {
  if (!cursor) return undefined;
  const [ts, id] = Buffer.from(cursor, "base64url").toString("utf8").split("|");
  if (!ts || !id || !/^\d+$/.test(id) || Number.isNaN(Date.parse(ts))) {
    throw new ApiError("BAD_REQUEST", "invalid query.cursor: not a cursor returned by this API", [{ path: "query.cursor", message: "not a cursor returned by this API" }]);
  }
  return { ts, id };
}

export async function listCaptureRecords(db: Db, auth: AuthContext, captureId: string, page: { limit: number; cursor?: string; order?: "asc" | "desc" }): Promise<Page<StoredRecordView>> {
  requireScope(auth.key.scopes, "captures:read");
  const capture = await db.selectFrom("captures").select("id").where("tenant_id", "=", auth.tenant.id).where("id", "=", captureId).executeTakeFirst();
  if (!capture) throw new ApiError("NOT_FOUND", `no capture ${captureId}`);
  const order = page.order ?? "asc";
  const after = decodeRecordCursor(page.cursor);
  let q = db
    .selectFrom("records")
    .selectAll()
    .select(sql<string>`host(src_ip)`.as("src_ip"))
    .select(sql<string>`host(dst_ip)`.as("dst_ip"))
    .where("capture_id", "=", captureId)
    .where("tenant_id", "=", auth.tenant.id)
    .orderBy("ts", order)
    .orderBy("id", order)
    .limit(page.limit + 1);
  if (after) q = q.where(sql<boolean>`(ts, id) ${sql.raw(order === "asc" ? ">" : "<")} (${after.ts}::timestamptz, ${after.id}::bigint)`);
  const rows = (await q.execute()) as RecordRow[];
  const items = rows.slice(0, page.limit);
  const last = items[items.length - 1];
  return {
    items: items.map(storedRecordView),
    nextCursor: rows.length > page.limit && last ? encodeRecordCursor({ ts: last.ts.toISOString(), id: last.id }) : null,
  };
}
