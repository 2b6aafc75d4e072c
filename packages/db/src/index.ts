export { createDb, type Db, type DbHandle } from "./client.ts";
export { migrateToLatest, migrateDown, migrateToEmpty, migrationNames } from "./migrate.ts";
export type * from "./tables/index.ts";
export * from "./header-terms.ts";
export * from "./queries/tenants.ts";
export * from "./queries/api-keys.ts";
export * from "./queries/audit-log.ts";
export * from "./queries/record-partitions.ts";
export * from "./queries/records.ts";
