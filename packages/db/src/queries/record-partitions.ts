/**
 * Daily partitions of `records`: created ahead of time, dropped for retention.
 * Partition names are records_pYYYYMMDD (UTC days).
 */
import { sql } from "kysely";
import type { Db } from "../client.ts";

const DAY_MS = 86_400_000;

function dayStart(d: Date): Date {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
}

export function partitionName(day: Date): string {
  return `records_p${dayStart(day).toISOString().slice(0, 10).replaceAll("-", "")}`;
}

/** Ensure partitions exist for the days from `from` through `days` days later. Returns names created. */
export async function ensureRecordPartitions(db: Db, from: Date, days: number): Promise<string[]> {
  const created: string[] = [];
  const existing = new Set(await listRecordPartitions(db));
  for (let i = 0; i < days; i++) {
    const start = new Date(dayStart(from).getTime() + i * DAY_MS);
    const end = new Date(start.getTime() + DAY_MS);
    const name = partitionName(start);
    if (existing.has(name)) continue;
    await sql`create table if not exists ${sql.table(name)} partition of records for values from (${sql.lit(start.toISOString())}) to (${sql.lit(end.toISOString())})`.execute(db);
    created.push(name);
  }
  return created;
}

export async function listRecordPartitions(db: Db): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    select c.relname as name from pg_inherits i
    join pg_class c on c.oid = i.inhrelid
    join pg_class p on p.oid = i.inhparent
    where p.relname = 'records' and c.relname like 'records_p%'
    order by c.relname`.execute(db);
  return rows.map((r) => r.name);
}

/** Drop daily partitions whose whole day is before `cutoff`. Returns names dropped. */
export async function dropRecordPartitionsBefore(db: Db, cutoff: Date): Promise<string[]> {
  const limit = partitionName(cutoff);
  const dropped: string[] = [];
  for (const name of await listRecordPartitions(db)) {
    if (name < limit) {
      await sql`drop table ${sql.table(name)}`.execute(db);
      dropped.push(name);
    }
  }
  return dropped;
}
