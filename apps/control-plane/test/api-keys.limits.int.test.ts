import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "./harness.ts";

describe("API key rate limits and rotation", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => h.close());

  it("answers 429 with Retry-After once a key's bucket is empty, and refills over time", async () => {
    const created = await h.call("POST", "/v1/api-keys", { key: h.operatorKey, body: { name: "slow", scopes: ["captures:read"], rateLimit: { perSecond: 2, burst: 3 } } });
    expect(created.status).toBe(201);
    expect(created.body.apiKey.rateLimit).toEqual({ perSecond: 2, burst: 3 });
    const key: string = created.body.key;
    const statuses: number[] = [];
    let limited: { status: number; body: any; headers: Headers } | undefined;
    for (let i = 0; i < 5; i++) {
      const res = await h.call("GET", "/v1/whoami", { key });
      statuses.push(res.status);
      if (res.status === 429) limited ??= res;
    }
    expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
    expect(statuses.slice(3)).toEqual([429, 429]);
    expect(limited!.body.error.code).toBe("TOO_MANY_REQUESTS");
    expect(Number(limited!.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    // Another key is not affected.
    expect((await h.call("GET", "/v1/whoami", { key: h.operatorKey })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await h.call("GET", "/v1/whoami", { key })).status).toBe(200);
  });

  it("rotates a key: the new key works at once, the old one until its grace period ends", async () => {
    const created = await h.call("POST", "/v1/api-keys", { key: h.operatorKey, body: { name: "ci", scopes: ["captures:read", "agents:read"] } });
    const oldKey: string = created.body.key;
    const rotated = await h.call("POST", `/v1/api-keys/${created.body.apiKey.id}/rotate`, { key: h.operatorKey, body: { gracePeriodSeconds: 1 } });
    expect(rotated.status).toBe(201);
    expect(rotated.body.apiKey).toMatchObject({ name: "ci", scopes: ["captures:read", "agents:read"] });
    const newKey: string = rotated.body.key;
    expect(newKey).not.toBe(oldKey);
    expect((await h.call("GET", "/v1/whoami", { key: newKey })).status).toBe(200);
    expect((await h.call("GET", "/v1/whoami", { key: oldKey })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await h.call("GET", "/v1/whoami", { key: oldKey })).status).toBe(401);
    expect((await h.call("GET", "/v1/whoami", { key: newKey })).status).toBe(200);

    const again = await h.call("POST", `/v1/api-keys/${created.body.apiKey.id}/rotate`, { key: h.operatorKey, body: {} });
    expect(again.status).toBe(409);
    const listed = await h.call("GET", "/v1/api-keys", { key: h.operatorKey });
    const old = listed.body.items.find((k: { id: string }) => k.id === created.body.apiKey.id);
    expect(old.rotatedToKeyId).toBe(rotated.body.apiKey.id);
  });

  it("validates rate limits and grace periods by field", async () => {
    const bad = await h.call("POST", "/v1/api-keys", { key: h.operatorKey, body: { name: "x", scopes: ["admin"], rateLimit: { perSecond: 0, burst: -1 } } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues.map((i: { path: string }) => i.path).sort()).toEqual(["body.rateLimit.burst", "body.rateLimit.perSecond"]);
    const grace = await h.call("POST", "/v1/api-keys/key_AAAAAAAAAAAAAAAAAAAA/rotate", { key: h.operatorKey, body: { gracePeriodSeconds: -5 } });
    expect(grace.status).toBe(400);
    expect(grace.body.error.issues[0].path).toBe("body.gracePeriodSeconds");
  });
});
