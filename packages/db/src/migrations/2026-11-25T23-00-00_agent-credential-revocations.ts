import { sql, type Kysely } from "kysely";

/**
 * Revoked agent NATS credentials: the user public keys whose JWTs nats-server must refuse,
 * pushed to it in the application account JWT. No foreign keys: a revocation outlives the
 * agent row (deleted with it) and the tenant, or deleting either would un-revoke the key.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("agent_credential_revocations")
    .addColumn("nats_public_key", "text", (c) => c.primaryKey())
    .addColumn("agent_id", "text", (c) => c.notNull())
    .addColumn("tenant_id", "text", (c) => c.notNull())
    .addColumn("revoked_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex("agent_credential_revocations_tenant_idx").on("agent_credential_revocations").columns(["tenant_id", "agent_id"]).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("agent_credential_revocations").execute();
}
