import { afterEach, describe, expect, it } from "vitest";
import { createDb } from "../src/index.ts";

// No server needed: port 1 on loopback refuses every connection.
describe("the postgres.js dialect", () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  afterEach(() => {
    process.off("unhandledRejection", onUnhandled);
  });

  it("rejects a transaction whose BEGIN cannot reach Postgres, leaving no unhandled rejection", async () => {
    process.on("unhandledRejection", onUnhandled);
    const h = createDb("postgres://u:p@127.0.0.1:1/none", { max: 1 });
    await expect(h.db.transaction().execute(async () => "never")).rejects.toThrow(/ECONNREFUSED/);
    await new Promise((r) => setTimeout(r, 200));
    expect(unhandled).toEqual([]);
    await h.close();
  });
});
