/** The one way to open the database: Kysely over postgres.js. */
import { Kysely } from "kysely";
import postgres from "postgres";
import { PostgresJsPoolDialect } from "./dialect.ts";
import type { Database } from "./tables/index.ts";

export type Db = Kysely<Database>;

export interface DbHandle {
  db: Db;
  /** The underlying postgres.js client (for COPY and LISTEN). */
  sql: postgres.Sql;
  close(): Promise<void>;
}

export function createDb(url: string, { max = 10 }: { max?: number } = {}): DbHandle {
  const sql = postgres(url, {
    max,
    onnotice: () => {},
    connect_timeout: 5,
  });
  const db = new Kysely<Database>({ dialect: new PostgresJsPoolDialect(sql) });
  // Callers stop taking work before closing; the deadline only bounds a stuck query.
  return { db, sql, close: () => sql.end({ timeout: 5 }) };
}
