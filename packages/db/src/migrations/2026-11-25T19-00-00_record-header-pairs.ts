import { sql, type Kysely } from "kysely";

/**
 * `header.<name>=<value>` lookups through an index: every record gets the array of
 * its lower-cased "name=value" pairs (a stored generated column, so every writer
 * fills it) with a GIN index. Before, a rare value walked the (capture, ts) index
 * and rechecked the jsonb of every row (~9 s on 4 M rows, see docs/benchmarks.md).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create function hdrcap_header_pairs(headers jsonb) returns text[] language sql immutable parallel safe as $$
      select coalesce(array_agg(lower(e->>0) || '=' || (e->>1)), '{}') from jsonb_array_elements(headers) e
    $$`.execute(db);
  await sql`alter table records add column header_pairs text[] generated always as (hdrcap_header_pairs(headers)) stored`.execute(db);
  await sql`create index records_header_pairs_idx on records using gin (header_pairs)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table records drop column header_pairs`.execute(db);
  await sql`drop function hdrcap_header_pairs(jsonb)`.execute(db);
}
