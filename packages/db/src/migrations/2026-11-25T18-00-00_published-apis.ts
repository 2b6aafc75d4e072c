import { sql, type Kysely } from "kysely";

/** Published APIs over captures and their consumer keys. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("published_apis")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("tenant_id", "text", (c) => c.notNull().references("tenants.id").onDelete("cascade"))
    .addColumn("name", "text", (c) => c.notNull())
    // Deleting a capture deletes its records, so an API over it has nothing left to serve.
    .addColumn("capture_id", "text", (c) => c.notNull().references("captures.id").onDelete("cascade"))
    .addColumn("description", "text")
    .addColumn("filter", "jsonb", (c) => c.notNull())
    .addColumn("fields", sql`text[]`, (c) => c.notNull())
    .addColumn("state", "text", (c) => c.notNull().defaultTo("draft").check(sql`state in ('draft', 'published', 'deprecated', 'retired')`))
    .addColumn("sunset_at", "timestamptz")
    .addColumn("published_at", "timestamptz")
    .addColumn("deprecated_at", "timestamptz")
    .addColumn("retired_at", "timestamptz")
    .addColumn("created_by_key_id", "text")
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("updated_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint("published_apis_tenant_name_uq", ["tenant_id", "name"])
    .execute();
  await db.schema.createIndex("published_apis_tenant_idx").on("published_apis").columns(["tenant_id", "id"]).execute();
  await db.schema.createIndex("published_apis_capture_idx").on("published_apis").column("capture_id").execute();

  await db.schema
    .createTable("published_api_consumers")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("api_id", "text", (c) => c.notNull().references("published_apis.id").onDelete("cascade"))
    .addColumn("tenant_id", "text", (c) => c.notNull())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("prefix", "text", (c) => c.notNull())
    .addColumn("hash", "text", (c) => c.notNull().unique())
    .addColumn("rate_limit_per_second", "integer")
    .addColumn("rate_limit_burst", "integer")
    .addColumn("revoked_at", "timestamptz")
    .addColumn("created_by_key_id", "text")
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex("published_api_consumers_api_idx").on("published_api_consumers").columns(["api_id", "id"]).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("published_api_consumers").execute();
  await db.schema.dropTable("published_apis").execute();
}
