import type { ApiKeysTable } from "./api-keys.ts";
import type { AuditLogTable } from "./audit-log.ts";
import type { RecordsTable } from "./records.ts";
import type { TenantsTable } from "./tenants.ts";

export interface Database {
  tenants: TenantsTable;
  api_keys: ApiKeysTable;
  audit_log: AuditLogTable;
  records: RecordsTable;
}

export type { Tenant, NewTenant } from "./tenants.ts";
export type { ApiKeyRow, NewApiKeyRow } from "./api-keys.ts";
export type { AuditEntry, NewAuditEntry } from "./audit-log.ts";
export type { RecordRow, NewRecordRow } from "./records.ts";
