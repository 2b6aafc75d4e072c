import { sql, type Kysely } from "kysely";

/** Where a capture takes its bytes from: socket syscalls (default) or packets on an interface. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("captures").addColumn("source", "jsonb", (c) => c.notNull().defaultTo(sql`'{"kind":"socket"}'::jsonb`)).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("captures").dropColumn("source").execute();
}
