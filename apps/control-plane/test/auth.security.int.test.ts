import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../src/app.ts";
import { createMetrics } from "../src/metrics.ts";
import { createHarness, createKey, createTenant, type Harness } from "./harness.ts";

function expectErrorBody(body: any, code: string) {
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe("string");
  expect(body.error.requestId).toMatch(/^req_/);
}

describe("authentication and authorisation", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => h.close());

  it.each([
    ["no header", undefined],
    ["a malformed key", "Bearer nope"],
    ["an unknown key", `Bearer hc_${"A".repeat(32)}`],
    ["the wrong scheme", "Basic dXNlcjpwYXNz"],
  ])("rejects a request with %s with 401", async (_what, header) => {
    const res = await h.call("GET", "/v1/whoami", { headers: header ? { authorization: header } : {} });
    expect(res.status).toBe(401);
    expectErrorBody(res.body, "UNAUTHORIZED");
    expect(res.headers.get("www-authenticate")).toContain("Bearer");
  });

  it("rejects an expired key with 401, even while it is cached", async () => {
    const { key } = await createKey(h, h.operatorKey, ["admin"], { expiresAt: new Date(Date.now() + 1500).toISOString() });
    expect((await h.call("GET", "/v1/whoami", { key })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1600));
    const res = await h.call("GET", "/v1/whoami", { key });
    expect(res.status).toBe(401);
    expectErrorBody(res.body, "UNAUTHORIZED");
  });

  it("honours a revocation on another replica within seconds (cache eviction over NATS)", async () => {
    const replicaB = createApp({ db: h.db.db, nats: h.nats, logger: pino({ level: "silent" }), metrics: createMetrics({ defaults: false }) });
    const { id, key } = await createKey(h, h.operatorKey, ["admin"]);
    const viaB = () => replicaB.request("/v1/whoami", { headers: { authorization: `Bearer ${key}` } });
    expect((await viaB()).status).toBe(200); // now cached on B
    expect((await h.call("DELETE", `/v1/api-keys/${id}`, { key: h.operatorKey })).status).toBe(200); // revoked on A
    await expect.poll(async () => (await viaB()).status, { timeout: 3000, interval: 50 }).toBe(401);
  });

  it("rejects a revoked key with 401 immediately", async () => {
    const { id, key } = await createKey(h, h.operatorKey, ["admin"]);
    expect((await h.call("GET", "/v1/whoami", { key })).status).toBe(200);
    const del = await h.call("DELETE", `/v1/api-keys/${id}`, { key: h.operatorKey });
    expect(del.status).toBe(200);
    expect(del.body.revokedAt).not.toBeNull();
    const res = await h.call("GET", "/v1/whoami", { key });
    expect(res.status).toBe(401);
  });

  it("refuses a key without the admin scope on key management with 403", async () => {
    const { key } = await createKey(h, h.operatorKey, ["captures:read", "captures:write", "agents:read", "agents:write"]);
    for (const [method, path, body] of [
      ["GET", "/v1/api-keys", undefined],
      ["POST", "/v1/api-keys", { name: "x", scopes: ["captures:read"] }],
      ["DELETE", "/v1/api-keys/key_AAAAAAAAAAAAAAAAAAAA", undefined],
    ] as const) {
      const res = await h.call(method, path, { key, body });
      expect(res.status, `${method} ${path}`).toBe(403);
      expectErrorBody(res.body, "FORBIDDEN");
    }
  });

  it("lets only operator keys manage tenants", async () => {
    const t = await createTenant(h, "notop");
    const res = await h.call("POST", "/v1/tenants", { key: t.key, body: { slug: "evil", name: "Evil" } });
    expect(res.status).toBe(403);
    expect((await h.call("GET", "/v1/tenants", { key: t.key })).status).toBe(403);
    const escalate = await h.call("POST", "/v1/api-keys", { key: t.key, body: { name: "x", scopes: ["operator"] } });
    expect(escalate.status).toBe(403);
  });

  it("isolates keys between tenants: A cannot list or revoke B's keys", async () => {
    const a = await createTenant(h, "tenant-a");
    const b = await createTenant(h, "tenant-b");
    const bKey = await createKey(h, b.key, ["captures:read"]);

    const listA = await h.call("GET", "/v1/api-keys", { key: a.key });
    expect(listA.status).toBe(200);
    const ids = listA.body.items.map((k: { id: string }) => k.id);
    expect(ids).not.toContain(bKey.id);

    const del = await h.call("DELETE", `/v1/api-keys/${bKey.id}`, { key: a.key });
    expect(del.status).toBe(404);
    expectErrorBody(del.body, "NOT_FOUND");
    expect((await h.call("GET", "/v1/whoami", { key: bKey.key })).status).toBe(200);
  });
});
