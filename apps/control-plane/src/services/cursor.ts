/** Opaque pagination cursors: base64url of the last item's sort key. */
import { ApiError } from "@hdrcap/api";

export function encodeCursor(value: string): string {
  return Buffer.from(value, "utf8").toString("base64url");
}

export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  const value = Buffer.from(cursor, "base64url").toString("utf8");
  if (!/^[A-Za-z0-9_]{1,64}$/.test(value)) {
    throw new ApiError("BAD_REQUEST", "invalid query.cursor: not a cursor returned by this API", [{ path: "query.cursor", message: "not a cursor returned by this API" }]);
  }
  return value;
}

export function pageFrom<T, V>(rows: T[], limit: number, keyOf: (row: T) => string, view: (row: T) => V) {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return {
    items: items.map(view),
    nextCursor: rows.length > limit && last !== undefined ? encodeCursor(keyOf(last)) : null,
  };
}
