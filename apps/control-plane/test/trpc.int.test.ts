import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "./harness.ts";

// The same scenario through REST and tRPC must give the same results.
describe("tRPC adapter", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => h.close());

  const trpc = (path: string, key: string | undefined, input?: unknown, mutation = false) =>
    h.call(mutation ? "POST" : "GET", mutation ? `/trpc/${path}` : `/trpc/${path}${input === undefined ? "" : `?input=${encodeURIComponent(JSON.stringify(input))}`}`, {
      key,
      body: mutation ? input : undefined,
    });

  it("creates, lists and revokes keys with the same semantics as REST", async () => {
    const created = await trpc("apiKeys.create", h.operatorKey, { name: "via-trpc", scopes: ["captures:read"] }, true);
    expect(created.status).toBe(200);
    const { key, apiKey } = created.body.result.data;
    expect(key).toMatch(/^hc_/);

    const rest = await h.call("GET", "/v1/whoami", { key });
    const viaTrpc = await trpc("whoami", key);
    // last_used_at may move between the two calls; everything else must match.
    const withoutLastUse = (b: any) => ({ ...b, apiKey: { ...b.apiKey, lastUsedAt: null } });
    expect(withoutLastUse(viaTrpc.body.result.data)).toEqual(withoutLastUse(rest.body));

    const listed = await trpc("apiKeys.list", h.operatorKey, { limit: 100 });
    expect(listed.body.result.data.items.map((k: { id: string }) => k.id)).toContain(apiKey.id);

    const revoked = await trpc("apiKeys.revoke", h.operatorKey, { id: apiKey.id }, true);
    expect(revoked.body.result.data.revokedAt).not.toBeNull();
    expect((await trpc("whoami", key)).status).toBe(401);
  });

  it("reports the same error codes and field names as REST", async () => {
    const noKey = await trpc("whoami", undefined);
    expect(noKey.status).toBe(401);
    expect(noKey.body.error.data.apiCode).toBe("UNAUTHORIZED");

    const bad = await trpc("apiKeys.create", h.operatorKey, { name: "", scopes: ["root"] }, true);
    expect(bad.status).toBe(400);
    expect(bad.body.error.data.apiCode).toBe("BAD_REQUEST");
    expect(bad.body.error.data.issues.map((i: { path: string }) => i.path).sort()).toEqual(["input.name", "input.scopes.0"]);

    const reader = await trpc("apiKeys.create", h.operatorKey, { name: "r", scopes: ["captures:read"] }, true);
    const forbidden = await trpc("apiKeys.list", reader.body.result.data.key, { limit: 10 });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error.data.apiCode).toBe("FORBIDDEN");
  });
});

describe("tRPC bad input", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => h.close());

  it("refuses text Postgres cannot store with 400 naming the field, as REST does", async () => {
    const res = await h.call("POST", "/trpc/apiKeys.create", { key: h.operatorKey, body: { name: "nul\u0000byte", scopes: ["captures:read"] } });
    expect(res.status).toBe(400);
    expect(res.body.error.data.apiCode).toBe("BAD_REQUEST");
    expect(res.body.error.data.issues.map((i: { path: string }) => i.path)).toEqual(["input.name"]);
  });
});
