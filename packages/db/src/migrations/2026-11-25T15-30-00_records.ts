import { sql, type Kysely } from "kysely";

/**
 * Records arrive at volume, so the table is range-partitioned by day on `ts`:
 * inserts touch one small partition, time-window queries prune partitions, and
 * retention drops whole partitions instead of deleting rows. A default partition
 * catches rows outside the pre-created range so an insert never fails for that.
 * Indexes are deliberately narrow (no GIN over whole header documents): a btree
 * per (capture, time) serves listing and time windows; header-name filters use a
 * GIN on the small lower-cased name array.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create sequence records_id_seq as bigint`.execute(db);
  await sql`
    create table records (
      id bigint not null default nextval('records_id_seq'),
      ts timestamptz not null,
      tenant_id text not null,
      capture_id text not null,
      agent_id text not null,
      connection_id text not null,
      kind text not null check (kind in ('request', 'response')),
      direction text not null check (direction in ('ingress', 'egress')),
      role text not null check (role in ('client', 'server', 'unknown')),
      src_ip inet not null,
      src_port integer not null,
      dst_ip inet not null,
      dst_port integer not null,
      pid integer not null,
      comm text not null,
      method text,
      path text,
      version text not null,
      status smallint,
      latency_ms double precision,
      headers jsonb not null,
      header_names text[] not null,
      header_bytes integer not null,
      primary key (ts, id)
    ) partition by range (ts)
  `.execute(db);
  await sql`alter sequence records_id_seq owned by records.id`.execute(db);
  await sql`create table records_default partition of records default`.execute(db);
  await sql`create index records_capture_ts_idx on records (capture_id, ts, id)`.execute(db);
  await sql`create index records_header_names_idx on records using gin (header_names)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table records`.execute(db);
}
