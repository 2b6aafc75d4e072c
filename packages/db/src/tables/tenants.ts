import type { ColumnType, Generated, Insertable, Selectable } from "kysely";

export interface TenantsTable {
  id: string;
  slug: string;
  name: string;
  created_at: Generated<Date>;
}
export type Tenant = Selectable<TenantsTable>;
export type NewTenant = Insertable<TenantsTable>;
export type Timestamp = ColumnType<Date, Date | string, Date | string>;
