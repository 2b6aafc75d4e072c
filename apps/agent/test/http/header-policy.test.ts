import { describe, expect, it } from "vitest";
import type { HeaderField } from "@hdrcap/api/records";
import {
  createHeaderPolicy,
  isSensitiveHeaderName,
  isSensitiveQueryParam,
} from "../../src/capture/http/header-policy.ts";

const fields = (): HeaderField[] => [
  { name: "Host", value: "api.example.com" },
  { name: "authorization", value: "Bearer abc" },
  { name: "Cookie", value: "sid=1" },
  { name: "X-Api-Key", value: "k-123" },
  { name: "Accept", value: "*/*" },
  { name: "Cookie", value: "theme=dark" },
  { name: "Proxy-Authorization", value: "Basic Zm9v" },
];

describe("createHeaderPolicy", () => {
  it("masks the default sensitive headers and lists their original names once", () => {
    const redacted: string[] = [];
    const out = createHeaderPolicy({ redactMode: "mask" }).applyToFields(fields(), redacted);
    expect(out).toEqual([
      { name: "Host", value: "api.example.com" },
      { name: "authorization", value: "[REDACTED]" },
      { name: "Cookie", value: "[REDACTED]" },
      { name: "X-Api-Key", value: "[REDACTED]" },
      { name: "Accept", value: "*/*" },
      { name: "Cookie", value: "[REDACTED]" },
      { name: "Proxy-Authorization", value: "[REDACTED]" },
    ]);
    expect(redacted).toEqual(["authorization", "Cookie", "X-Api-Key", "Proxy-Authorization"]);
  });

  it("drops the default sensitive headers in drop mode", () => {
    const redacted: string[] = [];
    const out = createHeaderPolicy({ redactMode: "drop" }).applyToFields(fields(), redacted);
    expect(out).toEqual([
      { name: "Host", value: "api.example.com" },
      { name: "Accept", value: "*/*" },
    ]);
    expect(redacted).toEqual(["authorization", "Cookie", "X-Api-Key", "Proxy-Authorization"]);
  });

  it("hashes sensitive values so equal values match without being stored", () => {
    const policy = createHeaderPolicy({ redactMode: "hash", hashKey: Buffer.from("job-1-key") });
    const out = policy.applyToFields(
      [
        { name: "Cookie", value: "sid=1" },
        { name: "COOKIE", value: "sid=1" },
        { name: "Cookie", value: "sid=2" },
      ],
      [],
    );
    const [a, b, c] = out.map((f) => f.value);
    expect(a).toMatch(/^hmac-sha256:[A-Za-z0-9_-]{43}$/);
    expect(a).toBe(b);
    expect(a).not.toBe(c);
    expect(a).not.toContain("sid");
  });

  it("hashes differently under different keys, and stably under the same key", () => {
    const value = [{ name: "Authorization", value: "Bearer abc" }];
    const hash = (key: string) =>
      createHeaderPolicy({ redactMode: "hash", hashKey: Buffer.from(key) }).applyToFields(structuredClone(value), [])[0]
        ?.value;
    expect(hash("k1")).toBe(hash("k1"));
    expect(hash("k1")).not.toBe(hash("k2"));
  });

  it("keeps default-sensitive headers in clear only with the explicit opt-in, still redacting names the job adds", () => {
    const redacted: string[] = [];
    const out = createHeaderPolicy({ redactMode: "mask", allowSensitive: true, redact: ["x-internal-id"] }).applyToFields(
      [...fields(), { name: "X-Internal-Id", value: "42" }],
      redacted,
    );
    expect(out.slice(0, 7)).toEqual(fields());
    expect(out[7]).toEqual({ name: "X-Internal-Id", value: "[REDACTED]" });
    expect(redacted).toEqual(["X-Internal-Id"]);
  });

  it("keeps only allowlisted headers, case-insensitively, and still redacts allowlisted credentials", () => {
    const redacted: string[] = [];
    const out = createHeaderPolicy({ redactMode: "mask", include: ["host", "AUTHORIZATION"] }).applyToFields(
      fields(),
      redacted,
    );
    expect(out).toEqual([
      { name: "Host", value: "api.example.com" },
      { name: "authorization", value: "[REDACTED]" },
    ]);
    expect(redacted).toEqual(["authorization"]);
  });

  it("recognises API-key-like names by their word parts", () => {
    const sensitive = [
      "Set-Cookie",
      "X-Auth-Token",
      "x-access-token",
      "X-Amz-Security-Token",
      "X-CSRF-Token",
      "X-Goog-Api-Key",
      "api_key",
      "ApiKey",
      "X-ApiKey",
      "X-AccessToken",
      "X-Client-Secret",
      "X-Vault-Token",
      "X-Db-Password",
      "X-Private-Key",
      "X-Forwarded-Authorization",
    ];
    const harmless = [
      "Host",
      "Accept",
      "Sec-WebSocket-Key",
      "X-RateLimit-Remaining-Tokens",
      "Keep-Alive",
      "WWW-Authenticate",
      "X-Request-Id",
      "Content-Length",
    ];
    expect(sensitive.filter((n) => !isSensitiveHeaderName(n))).toEqual([]);
    expect(harmless.filter((n) => isSensitiveHeaderName(n))).toEqual([]);
  });

  it("redacts sensitive query parameters of the request target by default and keeps the others", () => {
    const redacted: string[] = [];
    const policy = createHeaderPolicy({ redactMode: "mask" });
    expect(policy.applyToTarget("/cb?code_x=1&access_token=abc&X-Amz-Signature=ff&page=2", redacted)).toBe(
      "/cb?code_x=1&access_token=[REDACTED]&X-Amz-Signature=[REDACTED]&page=2",
    );
    expect(redacted).toEqual(["?access_token", "?X-Amz-Signature"]);
    expect(createHeaderPolicy({ redactMode: "drop" }).applyToTarget("/x?api_key=1&q=a", [])).toBe("/x?q=a");
    expect(policy.applyToTarget("/plain?q=token", [])).toBe("/plain?q=token");
    expect(isSensitiveQueryParam("sig")).toBe(true);
    expect(createHeaderPolicy({ redactMode: "mask", redactQuery: false }).applyToTarget("/x?token=1", [])).toBe(
      "/x?token=1",
    );
    expect(createHeaderPolicy({ redactMode: "mask", allowSensitive: true }).applyToTarget("/x?token=1", [])).toBe(
      "/x?token=1",
    );
  });
});
