import type { Kysely } from "kysely";

/** Per-key rate limits (token bucket) and the link from a rotated key to its successor. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable("api_keys")
    .addColumn("rate_limit_per_second", "integer")
    .addColumn("rate_limit_burst", "integer")
    .addColumn("rotated_to_key_id", "text")
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("api_keys").dropColumn("rate_limit_per_second").dropColumn("rate_limit_burst").dropColumn("rotated_to_key_id").execute();
}
