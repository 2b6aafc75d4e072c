/** Runs the migrations listed in migrations/index.ts. */
import { Migrator, type Kysely, type MigrationResultSet } from "kysely";
import { migrations } from "./migrations/index.ts";

function migrator(db: Kysely<any>): Migrator {
  return new Migrator({ db, provider: { getMigrations: async () => migrations } });
}

function check(result: MigrationResultSet): string[] {
  if (result.error) {
    const failed = result.results?.find((r) => r.status === "Error")?.migrationName;
    const message = result.error instanceof Error ? result.error.message : String(result.error);
    throw new Error(`migration ${failed ?? "(unknown)"} failed: ${message}`);
  }
  return (result.results ?? []).map((r) => r.migrationName);
}

/** Apply all pending migrations; returns the names applied. */
export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  return check(await migrator(db).migrateToLatest());
}

/** Undo the most recent migration; returns the names undone. */
export async function migrateDown(db: Kysely<any>): Promise<string[]> {
  return check(await migrator(db).migrateDown());
}

/** Undo every migration. */
export async function migrateToEmpty(db: Kysely<any>): Promise<string[]> {
  const { NO_MIGRATIONS } = await import("kysely");
  return check(await migrator(db).migrateTo(NO_MIGRATIONS));
}

export const migrationNames = Object.keys(migrations);
