import { describe, expect, it } from "vitest";
import { loadEnv, readSystemCreds } from "../src/env.ts";

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

  it("takes the NATS revocation settings together, with the account seed", () => {
    const signing = "SO" + "A".repeat(56);
    const account = "SA" + "A".repeat(56);
    expect(() => loadEnv({ ...base, NATS_ACCOUNT_SEED: account, NATS_OPERATOR_SIGNING_SEED: signing })).toThrowError(/set both NATS_OPERATOR_SIGNING_SEED and NATS_SYSTEM_CREDS/);
    expect(() => loadEnv({ ...base, NATS_OPERATOR_SIGNING_SEED: signing, NATS_SYSTEM_CREDS: "/etc/hdrcap/sys.creds" })).toThrowError(/NATS_ACCOUNT_SEED must be set too/);
    expect(() => loadEnv({ ...base, NATS_ACCOUNT_SEED: account, NATS_OPERATOR_SIGNING_SEED: account, NATS_SYSTEM_CREDS: "x" })).toThrowError(/NATS_OPERATOR_SIGNING_SEED: must be a NATS operator/);
    const env = loadEnv({ ...base, NATS_ACCOUNT_SEED: account, NATS_OPERATOR_SIGNING_SEED: signing, NATS_SYSTEM_CREDS: "/etc/hdrcap/sys.creds" });
    expect(env.HDRCAP_NATS_REVOCATION_REPUSH_SECONDS).toBe(60);
  });

  it("reads NATS_SYSTEM_CREDS as a .creds document or a file path", () => {
    const doc = "-----BEGIN NATS USER JWT-----\neyJ...\n------END NATS USER JWT------\n";
    expect(readSystemCreds(doc)).toBe(doc);
    expect(() => readSystemCreds("/nonexistent/sys.creds")).toThrowError(/NATS_SYSTEM_CREDS: cannot read the .creds file \/nonexistent\/sys.creds/);
  });
});
