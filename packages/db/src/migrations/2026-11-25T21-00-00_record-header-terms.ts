import { sql, type Kysely } from "kysely";

/**
 * One GIN index for header filters instead of two, filled by the writer instead of
 * by a function per row. `header_terms` holds each lower-cased header name and each
 * "name=value" pair (packages/db/src/header-terms.ts: names containing "=" have no
 * terms, so a term reads one way only), and replaces `header_names` (GIN) and the
 * generated `header_pairs` (GIN, `hdrcap_header_pairs` per row). Writers fill it
 * (`storeRecordBatch` in its statement, others with `headerTerms`); it has no
 * default, so a writer that forgets it fails instead of storing unfindable rows.
 * Measured in docs/benchmarks.md (Ingest, "One GIN index").
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table records add column header_terms text[]`.execute(db);
  // the old indexes and the generated column first, so the fill below maintains none of them
  await sql`drop index records_header_names_idx`.execute(db);
  await sql`alter table records drop column header_pairs`.execute(db);
  await sql`drop function hdrcap_header_pairs(jsonb)`.execute(db);
  await sql`
    update records set header_terms =
      array(select n from unnest(header_names) n where strpos(n, '=') = 0)
      || array(select lower(h->>0) || '=' || (h->>1) from jsonb_array_elements(headers) h where strpos(h->>0, '=') = 0)`.execute(db);
  await sql`alter table records drop column header_names, alter column header_terms set not null`.execute(db);
  await sql`create index records_header_terms_idx on records using gin (header_terms)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table records drop column header_terms`.execute(db);
  await sql`alter table records add column header_names text[]`.execute(db);
  await sql`
    update records set header_names =
      array(select lower(h->>0) from jsonb_array_elements(headers) with ordinality as e(h, i) group by 1 order by min(i))`.execute(db);
  await sql`alter table records alter column header_names set not null`.execute(db);
  await sql`create index records_header_names_idx on records using gin (header_names)`.execute(db);
  await sql`
    create function hdrcap_header_pairs(headers jsonb) returns text[] language sql immutable parallel safe as $$
      select coalesce(array_agg(lower(e->>0) || '=' || (e->>1)), '{}') from jsonb_array_elements(headers) e
    $$`.execute(db);
  await sql`alter table records add column header_pairs text[] generated always as (hdrcap_header_pairs(headers)) stored`.execute(db);
  await sql`create index records_header_pairs_idx on records using gin (header_pairs)`.execute(db);
}
