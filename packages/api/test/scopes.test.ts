import { describe, expect, it } from "vitest";
import { ApiError, hasScope, requireScope } from "../src/index.ts";

describe("scopes", () => {
  it("admin implies every tenant scope but not operator", () => {
    for (const s of ["captures:read", "captures:write", "agents:read", "agents:write", "admin"] as const) expect(hasScope(["admin"], s)).toBe(true);
    expect(hasScope(["admin"], "operator")).toBe(false);
  });

  it("a narrow scope grants only itself", () => {
    expect(hasScope(["captures:read"], "captures:read")).toBe(true);
    expect(hasScope(["captures:read"], "captures:write")).toBe(false);
    expect(hasScope(["operator"], "admin")).toBe(false);
  });

  it("requireScope throws FORBIDDEN naming the missing scope", () => {
    expect(() => requireScope(["agents:read"], "admin")).toThrowError(ApiError);
    expect(() => requireScope(["agents:read"], "admin")).toThrowError(/"admin"/);
  });
});
