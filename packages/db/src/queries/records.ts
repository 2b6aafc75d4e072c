import type { Db } from "../client.ts";
import type { NewRecordRow } from "../tables/index.ts";

/** Multi-row insert in chunks small enough for the protocol's parameter limit. */
export async function insertRecordRows(db: Db, rows: NewRecordRow[]): Promise<void> {
  const PER_STATEMENT = 2000; // 23 columns each: well under 65,535 parameters
  for (let i = 0; i < rows.length; i += PER_STATEMENT) {
    await db.insertInto("records").values(rows.slice(i, i + PER_STATEMENT)).execute();
  }
}
