/** Writes the audit trail of mutating calls: who (key), what, when, from where. */
import type { AuthContext } from "@hdrcap/api";
import { insertAuditEntry, type Db } from "@hdrcap/db";

export async function audit(
  db: Db,
  auth: AuthContext,
  action: string,
  resource: { type: string; id: string | null; tenantId?: string },
  details: Record<string, unknown> = {},
): Promise<void> {
  await insertAuditEntry(db, {
    tenant_id: resource.tenantId ?? auth.tenant.id,
    actor_key_id: auth.key.id,
    action,
    resource_type: resource.type,
    resource_id: resource.id,
    request_id: auth.requestId,
    ip: auth.ip,
    details: { ...details, actorTenantId: auth.tenant.id },
  });
}
