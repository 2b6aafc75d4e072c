import { sql, type Kysely } from "kysely";

/**
 * Agent upgrade rollouts and the state of each agent in one. At most one rollout runs per
 * tenant (partial unique index), so two operators cannot drive the same agents at once.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("agent_upgrades")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("tenant_id", "text", (c) => c.notNull().references("tenants.id").onDelete("cascade"))
    .addColumn("target_version", "text", (c) => c.notNull())
    .addColumn("bundle_file", "text", (c) => c.notNull())
    .addColumn("bundle_sha256", "text", (c) => c.notNull())
    .addColumn("bundle_size", "bigint", (c) => c.notNull())
    .addColumn("selector", "jsonb", (c) => c.notNull())
    .addColumn("batch_size", "integer", (c) => c.notNull())
    .addColumn("timeout_seconds", "integer", (c) => c.notNull())
    .addColumn("batch_count", "integer", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull().defaultTo("running").check(sql`status in ('running', 'completed', 'failed')`))
    .addColumn("status_reason", "text")
    .addColumn("current_batch", "integer")
    .addColumn("batch_started_at", "timestamptz")
    .addColumn("created_by_key_id", "text")
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("finished_at", "timestamptz")
    .execute();
  await db.schema.createIndex("agent_upgrades_tenant_idx").on("agent_upgrades").columns(["tenant_id", "id"]).execute();
  await sql`create unique index agent_upgrades_one_running_uq on agent_upgrades (tenant_id) where status = 'running'`.execute(db);

  await db.schema
    .createTable("agent_upgrade_agents")
    .addColumn("upgrade_id", "text", (c) => c.notNull().references("agent_upgrades.id").onDelete("cascade"))
    // Not a foreign key: a deregistered agent's row stays as the record of what happened.
    .addColumn("agent_id", "text", (c) => c.notNull())
    .addColumn("tenant_id", "text", (c) => c.notNull())
    .addColumn("hostname", "text", (c) => c.notNull())
    .addColumn("batch", "integer")
    .addColumn("status", "text", (c) => c.notNull().check(sql`status in ('pending', 'upgrading', 'upgraded', 'failed', 'skipped')`))
    .addColumn("from_version", "text")
    .addColumn("message", "text")
    .addColumn("commanded_at", "timestamptz")
    .addColumn("updated_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint("agent_upgrade_agents_pk", ["upgrade_id", "agent_id"])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("agent_upgrade_agents").execute();
  await db.schema.dropTable("agent_upgrades").execute();
}
