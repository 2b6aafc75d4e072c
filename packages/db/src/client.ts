/** The one way to open the database: Kysely over postgres.js. */
import { Kysely } from "kysely";
import { PostgresJSDialect } from "kysely-postgres-js";
import postgres from "postgres";
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
  const db = new Kysely<Database>({ dialect: new PostgresJSDialect({ postgres: sql }) });
  // postgres.js never finishes end() once a reserved connection (how
  // kysely-postgres-js runs every query) has been released (porsager/postgres#925),
  // so end with a deadline. Callers stop taking work before closing, so nothing
  // is in flight by then.
  return { db, sql, close: () => sql.end({ timeout: 0.5 }) };
}
