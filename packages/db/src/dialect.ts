/**
 * A Kysely dialect over postgres.js that never uses `sql.reserve()`.
 *
 * kysely-postgres-js reserves a connection for every query. In postgres@3.4.9 a
 * reserved connection whose backend dies mid-query (Postgres restarted, backend
 * killed) is never returned to the pool (porsager/postgres#1208), so after a few
 * restarts every query of the control plane waits forever. Here single queries run
 * on the pool (`sql.unsafe`) and transactions on `sql.begin`, which postgres.js
 * cleans up when the connection dies; a Kysely transaction keeps its `begin`
 * callback open until Kysely commits or rolls back.
 */
import {
  CompiledQuery,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from "kysely";
import type postgres from "postgres";

const ROLLBACK = Symbol("rollback");

class PoolConnection implements DatabaseConnection {
  private tx: postgres.TransactionSql | undefined;
  private finish: { commit: () => void; rollback: () => void } | undefined;
  private done: Promise<unknown> | undefined;

  constructor(private readonly sql: postgres.Sql) {}

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const target = this.tx ?? this.sql;
    const result = await target.unsafe(compiled.sql, compiled.parameters as postgres.ParameterOrJSON<never>[]);
    const affects = result.command === "INSERT" || result.command === "UPDATE" || result.command === "DELETE" || result.command === "MERGE";
    return { rows: Array.from(result) as R[], ...(affects ? { numAffectedRows: BigInt(result.count) } : {}) };
  }

  async *streamQuery<R>(compiled: CompiledQuery, chunkSize = 1000): AsyncIterableIterator<QueryResult<R>> {
    const target = this.tx ?? this.sql;
    const cursor = target.unsafe(compiled.sql, compiled.parameters as postgres.ParameterOrJSON<never>[]).cursor(chunkSize);
    for await (const rows of cursor) yield { rows: rows as R[] };
  }

  begin(settings: TransactionSettings): Promise<void> {
    const options = [settings.isolationLevel ? `isolation level ${settings.isolationLevel}` : "", settings.accessMode ?? ""].filter(Boolean).join(" ");
    return new Promise<void>((ready, failed) => {
      const body = (tx: postgres.TransactionSql) => {
        this.tx = tx;
        ready();
        return new Promise<void>((commit, rollback) => {
          this.finish = { commit, rollback: () => rollback(ROLLBACK) };
        });
      };
      this.done = (options ? this.sql.begin(options, body) : this.sql.begin(body)).catch((err: unknown) => {
        // BEGIN itself failed: Kysely gets the error from begin() and will not commit or
        // roll back, so nobody awaits `done`; rethrowing would be an unhandled rejection.
        if (!this.tx) return failed(err);
        if (err !== ROLLBACK) throw err;
      });
    });
  }

  async commit(): Promise<void> {
    this.finish?.commit();
    try {
      await this.done;
    } finally {
      this.reset();
    }
  }

  async rollback(): Promise<void> {
    this.finish?.rollback();
    try {
      await this.done;
    } finally {
      this.reset();
    }
  }

  private reset(): void {
    this.tx = undefined;
    this.finish = undefined;
    this.done = undefined;
  }
}

class PoolDriver implements Driver {
  constructor(private readonly sql: postgres.Sql) {}
  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    return new PoolConnection(this.sql);
  }
  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    await (connection as PoolConnection).begin(settings);
  }
  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await (connection as PoolConnection).commit();
  }
  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await (connection as PoolConnection).rollback();
  }
  async releaseConnection(): Promise<void> {}
  async destroy(): Promise<void> {
    await this.sql.end({ timeout: 5 });
  }
}

export class PostgresJsPoolDialect implements Dialect {
  constructor(private readonly sql: postgres.Sql) {}
  createAdapter(): DialectAdapter {
    return new PostgresAdapter();
  }
  createDriver(): Driver {
    return new PoolDriver(this.sql);
  }
  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler();
  }
  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new PostgresIntrospector(db);
  }
}
