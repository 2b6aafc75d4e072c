import type { Generated, Insertable, Selectable } from "kysely";

export interface AuditLogTable {
  id: Generated<string>;
  tenant_id: string;
  actor_key_id: string | null;
  action: string;
  resource_type: string;
  resource_id: string | null;
  request_id: string | null;
  ip: string | null;
  details: unknown;
  created_at: Generated<Date>;
}
export type AuditEntry = Selectable<AuditLogTable>;
export type NewAuditEntry = Insertable<AuditLogTable>;
