import { ApiError } from "@hdrcap/api";
import { describe, expect, it } from "vitest";
import { decodeCursor, encodeCursor, pageFrom } from "../src/services/cursor.ts";

describe("pagination cursors", () => {
  it("round-trip the last item's key", () => {
    expect(decodeCursor(encodeCursor("key_abc123"))).toBe("key_abc123");
    expect(decodeCursor(undefined)).toBeUndefined();
  });

  it("reject anything this API did not hand out, naming query.cursor", () => {
    for (const bad of ["%%%", encodeCursor("'; drop table x"), encodeCursor("")]) {
      try {
        decodeCursor(bad);
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(ApiError);
        expect((err as ApiError).issues?.[0]?.path).toBe("query.cursor");
      }
    }
  });

  it("return a next cursor only when a further row exists", () => {
    const rows = ["a", "b", "c"];
    expect(pageFrom(rows, 2, (r) => r, (r) => r.toUpperCase())).toEqual({ items: ["A", "B"], nextCursor: encodeCursor("b") });
    expect(pageFrom(rows, 3, (r) => r, (r) => r)).toEqual({ items: rows, nextCursor: null });
  });
});
