import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("enrollment_tokens")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("tenant_id", "text", (c) => c.notNull().references("tenants.id").onDelete("cascade"))
    .addColumn("prefix", "text", (c) => c.notNull())
    .addColumn("hash", "text", (c) => c.notNull().unique())
    .addColumn("labels", "jsonb", (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn("max_uses", "integer", (c) => c.notNull())
    .addColumn("uses", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("expires_at", "timestamptz", (c) => c.notNull())
    .addColumn("revoked_at", "timestamptz")
    .addColumn("created_by_key_id", "text")
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex("enrollment_tokens_tenant_idx").on("enrollment_tokens").columns(["tenant_id", "id"]).execute();

  await db.schema
    .createTable("agents")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("tenant_id", "text", (c) => c.notNull().references("tenants.id").onDelete("cascade"))
    .addColumn("machine_id", "text", (c) => c.notNull())
    .addColumn("hostname", "text", (c) => c.notNull())
    .addColumn("labels", "jsonb", (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn("facts", "jsonb", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull().defaultTo("offline").check(sql`status in ('online', 'offline')`))
    .addColumn("nats_public_key", "text", (c) => c.notNull())
    .addColumn("enrolled_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("last_seen_at", "timestamptz")
    .addUniqueConstraint("agents_tenant_machine_uq", ["tenant_id", "machine_id"])
    .execute();
  await db.schema.createIndex("agents_tenant_idx").on("agents").columns(["tenant_id", "id"]).execute();
  await db.schema.createIndex("agents_labels_idx").on("agents").using("gin").column("labels").execute();

  await db.schema
    .createTable("captures")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("tenant_id", "text", (c) => c.notNull().references("tenants.id").onDelete("cascade"))
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("protocol", "text", (c) => c.notNull())
    .addColumn("selector", "jsonb", (c) => c.notNull())
    .addColumn("filter", "jsonb", (c) => c.notNull())
    .addColumn("headers", "jsonb", (c) => c.notNull())
    .addColumn("limits", "jsonb", (c) => c.notNull())
    .addColumn("hash_key", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull().defaultTo("pending"))
    .addColumn("status_reason", "text")
    .addColumn("max_records", "bigint")
    .addColumn("stored_records", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("expires_at", "timestamptz")
    .addColumn("stop_requested_at", "timestamptz")
    .addColumn("ended_at", "timestamptz")
    .addColumn("created_by_key_id", "text")
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex("captures_tenant_idx").on("captures").columns(["tenant_id", "id"]).execute();
  await sql`create index captures_active_idx on captures (status) where status in ('pending', 'running', 'stopping')`.execute(db);

  await db.schema
    .createTable("capture_agents")
    .addColumn("capture_id", "text", (c) => c.notNull().references("captures.id").onDelete("cascade"))
    .addColumn("agent_id", "text", (c) => c.notNull().references("agents.id").onDelete("cascade"))
    .addColumn("tenant_id", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull().defaultTo("assigned"))
    .addColumn("message", "text")
    .addColumn("counters", "jsonb", (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn("stored", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("updated_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint("capture_agents_pk", ["capture_id", "agent_id"])
    .execute();
  await db.schema.createIndex("capture_agents_agent_idx").on("capture_agents").columns(["agent_id"]).execute();

  // Exactly-once ingestion: a batch id is recorded in the same transaction as its rows.
  await db.schema
    .createTable("ingested_batches")
    .addColumn("batch_id", "text", (c) => c.primaryKey())
    .addColumn("capture_id", "text", (c) => c.notNull())
    .addColumn("agent_id", "text", (c) => c.notNull())
    .addColumn("records", "integer", (c) => c.notNull())
    .addColumn("ingested_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex("ingested_batches_time_idx").on("ingested_batches").column("ingested_at").execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("ingested_batches").execute();
  await db.schema.dropTable("capture_agents").execute();
  await db.schema.dropTable("captures").execute();
  await db.schema.dropTable("agents").execute();
  await db.schema.dropTable("enrollment_tokens").execute();
}
