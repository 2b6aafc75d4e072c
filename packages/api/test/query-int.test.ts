import { describe, expect, it } from "vitest";
import { pageQuerySchema } from "../src/schemas.ts";
import { recordsQuerySchema } from "../src/records.ts";
import { queryIntSchema } from "../src/query-int.ts";

describe("integer query parameters", () => {
  const limit = queryIntSchema(1, 1000);

  it("takes JSON numbers (tRPC) and decimal strings (URL query)", () => {
    expect(limit.parse(7)).toBe(7);
    expect(limit.parse("250")).toBe(250);
    expect(pageQuerySchema.parse({}).limit).toBe(100);
    expect(recordsQuerySchema.parse({ status: "404", limit: "3" })).toMatchObject({ status: 404, limit: 3 });
  });

  it("refuses what z.coerce.number() would have turned into a number", () => {
    for (const bad of [true, false, null, "", " 5", "0x10", "1e3", "5.5", 5.5, [], {}, "١٢"]) {
      expect(limit.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
    const res = pageQuerySchema.safeParse({ limit: true });
    expect(res.success).toBe(false);
    expect(res.error?.issues[0]?.path).toEqual(["limit"]);
  });

  it("keeps the bounds", () => {
    expect(limit.safeParse("0").success).toBe(false);
    expect(limit.safeParse(1001).success).toBe(false);
    expect(limit.safeParse("-3").success).toBe(false);
  });
});
