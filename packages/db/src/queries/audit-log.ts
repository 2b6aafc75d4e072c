import type { Db } from "../client.ts";
import type { AuditEntry, NewAuditEntry } from "../tables/index.ts";

export async function insertAuditEntry(db: Db, entry: NewAuditEntry): Promise<void> {
  await db.insertInto("audit_log").values({ ...entry, details: entry.details ?? {} }).execute();
}

export async function listAuditEntries(db: Db, tenantId: string, { limit, before }: { limit: number; before?: string }): Promise<AuditEntry[]> {
  let q = db.selectFrom("audit_log").selectAll().where("tenant_id", "=", tenantId).orderBy("id", "desc").limit(limit);
  if (before) q = q.where("id", "<", before);
  return q.execute();
}
