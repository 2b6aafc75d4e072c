import { describe, expect, it } from "vitest";
import { loadEnv } from "../src/env.ts";

const base = { DATABASE_URL: "postgres://u:p@127.0.0.1:5432/db", NATS_URL: "nats://127.0.0.1:4222" };

describe("environment", () => {
  it("fills defaults for optional settings", () => {
    const env = loadEnv(base);
    expect(env.PORT).toBe(7070);
    expect(env.HDRCAP_ROLES).toEqual(["api", "ingest", "scheduler"]);
  });

  it("names every invalid or missing variable in one readable error", () => {
    expect(() => loadEnv({ NATS_URL: "http://x", PORT: "70000" })).toThrowError(/DATABASE_URL[\s\S]*NATS_URL: must be a nats:\/\/ URL[\s\S]*PORT/);
  });

  it("rejects unknown roles", () => {
    expect(() => loadEnv({ ...base, HDRCAP_ROLES: "api,ingestt" })).toThrowError(/unknown role "ingestt"/);
    expect(loadEnv({ ...base, HDRCAP_ROLES: " ingest " }).HDRCAP_ROLES).toEqual(["ingest"]);
  });
});
