/** A fresh, migrated database per test suite on the shared test Postgres. */
import { createDb, migrateToLatest, type DbHandle } from "@hdrcap/db";
import { ensureDatabase } from "@hdrcap/local-services";
import { randomBytes } from "node:crypto";
import postgres from "postgres";

export interface TestDatabase extends DbHandle {
  url: string;
  name: string;
  drop(): Promise<void>;
}

export async function freshDatabase(adminUrl: string, { migrate = true } = {}): Promise<TestDatabase> {
  const name = `t_${randomBytes(6).toString("hex")}`;
  await ensureDatabase(adminUrl, name);
  const url = adminUrl.replace(/\/[^/]*$/, `/${name}`);
  const handle = createDb(url, { max: 5 });
  if (migrate) await migrateToLatest(handle.db);
  return {
    ...handle,
    url,
    name,
    async drop() {
      await handle.close();
      const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
      try {
        await sql.unsafe(`drop database if exists ${name} with (force)`);
      } finally {
        await sql.end({ timeout: 1 });
      }
    },
  };
}
