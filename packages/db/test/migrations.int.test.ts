import { freshDatabase, type TestDatabase } from "@hdrcap/testkit";
import { sql } from "kysely";
import { afterEach, describe, expect, inject, it } from "vitest";
import { migrateToEmpty, migrateToLatest, migrationNames } from "../src/index.ts";

async function tables(t: TestDatabase): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`select tablename as name from pg_tables where schemaname = 'public' and tablename not like 'kysely_%' order by 1`.execute(t.db);
  return rows.map((r) => r.name);
}

describe("migrations", () => {
  let t: TestDatabase | undefined;
  afterEach(async () => t?.drop());

  it("run up, down and up again on an empty database", async () => {
    t = await freshDatabase(inject("pgAdminUrl"), { migrate: false });
    expect(await tables(t)).toEqual([]);

    expect(await migrateToLatest(t.db)).toEqual(migrationNames);
    const afterUp = await tables(t);
    expect(afterUp).toEqual(expect.arrayContaining(["tenants", "api_keys", "audit_log", "records", "records_default"]));

    expect(await migrateToEmpty(t.db)).toEqual([...migrationNames].reverse());
    expect(await tables(t)).toEqual([]);

    expect(await migrateToLatest(t.db)).toEqual(migrationNames);
    expect(await tables(t)).toEqual(afterUp);
    expect(await migrateToLatest(t.db)).toEqual([]);
  });
});
