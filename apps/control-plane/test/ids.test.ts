import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { hashApiKey, looksLikeApiKey, newApiKeySecret, newId, randomBase62 } from "../src/services/ids.ts";

describe("ids and API key secrets", () => {
  it("mint keys as hc_ plus 32 base62 characters, with an 11-character visible prefix", () => {
    const { key, prefix, hash } = newApiKeySecret();
    expect(key).toMatch(/^hc_[0-9A-Za-z]{32}$/);
    expect(prefix).toBe(key.slice(0, 11));
    expect(hash).toBe(createHash("sha256").update(key).digest("hex"));
    expect(hashApiKey(key)).toBe(hash);
  });

  it("never repeat keys or ids", () => {
    const keys = new Set(Array.from({ length: 2000 }, () => newApiKeySecret().key));
    const ids = new Set(Array.from({ length: 2000 }, () => newId("key")));
    expect(keys.size).toBe(2000);
    expect(ids.size).toBe(2000);
  });

  it("use every base62 character roughly uniformly", () => {
    const counts = new Map<string, number>();
    for (const ch of randomBase62(62_000)) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    expect(counts.size).toBe(62);
    for (const n of counts.values()) expect(n).toBeGreaterThan(800); // expected 1000 each
  });

  it("recognise only well-formed keys", () => {
    expect(looksLikeApiKey(newApiKeySecret().key)).toBe(true);
    expect(looksLikeApiKey("hc_short")).toBe(false);
    expect(looksLikeApiKey(`hc_${"a".repeat(31)}!`)).toBe(false);
    expect(looksLikeApiKey(`xx_${"a".repeat(32)}`)).toBe(false);
  });
});
