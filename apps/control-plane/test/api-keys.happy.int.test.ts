import { createHash } from "node:crypto";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHarness, createKey, createTenant, type Harness } from "./harness.ts";

describe("API keys (happy paths)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => h.close());

  it("whoami returns the tenant and key metadata but never the secret", async () => {
    const res = await h.call("GET", "/v1/whoami", { key: h.operatorKey });
    expect(res.status).toBe(200);
    expect(res.body.tenant.slug).toBe("default");
    expect(res.body.apiKey.prefix).toBe(h.operatorKey.slice(0, 11));
    expect(res.body.apiKey.scopes).toEqual(["operator", "admin"]);
    expect(JSON.stringify(res.body)).not.toContain(h.operatorKey);
  });

  it("stores only a SHA-256 hash and a short prefix of a new key", async () => {
    const res = await h.call("POST", "/v1/api-keys", { key: h.operatorKey, body: { name: "reader", scopes: ["captures:read"] } });
    expect(res.status).toBe(201);
    const secret: string = res.body.key;
    expect(secret).toMatch(/^hc_[0-9A-Za-z]{32}$/);

    const { rows } = await sql<Record<string, unknown>>`select * from api_keys where id = ${res.body.apiKey.id}`.execute(h.db.db);
    expect(rows).toHaveLength(1);
    const stored = JSON.stringify(rows[0]);
    expect(stored).not.toContain(secret);
    expect(stored).not.toContain(secret.slice(11));
    expect(rows[0]!.hash).toBe(createHash("sha256").update(secret).digest("hex"));
    expect(rows[0]!.prefix).toBe(secret.slice(0, 11));
  });

  it("a new key authenticates, and lists show no secrets", async () => {
    const { key } = await createKey(h, h.operatorKey, ["agents:read"]);
    const me = await h.call("GET", "/v1/whoami", { key });
    expect(me.status).toBe(200);
    expect(me.body.apiKey.scopes).toEqual(["agents:read"]);

    const list = await h.call("GET", "/v1/api-keys", { key: h.operatorKey });
    expect(list.status).toBe(200);
    expect(list.body.items.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(list.body)).not.toContain(key);
  });

  it("records last_used_at when a key is used", async () => {
    const { id, key } = await createKey(h, h.operatorKey, ["captures:read"]);
    const before = await h.db.db.selectFrom("api_keys").select("last_used_at").where("id", "=", id).executeTakeFirstOrThrow();
    expect(before.last_used_at).toBeNull();
    await h.call("GET", "/v1/whoami", { key });
    await expect.poll(async () => (await h.db.db.selectFrom("api_keys").select("last_used_at").where("id", "=", id).executeTakeFirstOrThrow()).last_used_at).not.toBeNull();
  });

  it("paginates keys with an opaque cursor", async () => {
    const t = await createTenant(h, "paging");
    for (let i = 0; i < 4; i++) await createKey(h, t.key, ["captures:read"]);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { status: number; body: any } = await h.call("GET", `/v1/api-keys?limit=2${cursor ? `&cursor=${cursor}` : ""}`, { key: t.key });
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.items.map((k: { id: string }) => k.id));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen).toHaveLength(5); // the tenant's admin key + 4
    expect(new Set(seen).size).toBe(5);
  });

  it("writes an audit entry for each mutating call", async () => {
    const { id } = await createKey(h, h.operatorKey, ["captures:read"]);
    await h.call("DELETE", `/v1/api-keys/${id}`, { key: h.operatorKey });
    const entries = await h.db.db.selectFrom("audit_log").selectAll().where("resource_id", "=", id).orderBy("id").execute();
    expect(entries.map((e) => e.action)).toEqual(["api_key.create", "api_key.revoke"]);
    expect(entries[0]!.actor_key_id).toMatch(/^key_/);
    expect(entries[0]!.request_id).toMatch(/^req_/);
  });

  it("an operator creates tenants, each with a working admin key", async () => {
    const res = await h.call("POST", "/v1/tenants", { key: h.operatorKey, body: { slug: "acme", name: "Acme" } });
    expect(res.status).toBe(201);
    expect(res.body.tenant.slug).toBe("acme");
    const me = await h.call("GET", "/v1/whoami", { key: res.body.key });
    expect(me.body.tenant.id).toBe(res.body.tenant.id);
    expect(me.body.apiKey.scopes).toEqual(["admin"]);

    const list = await h.call("GET", "/v1/tenants", { key: h.operatorKey });
    expect(list.body.items.map((t: { slug: string }) => t.slug)).toEqual(expect.arrayContaining(["default", "acme"]));
    const dup = await h.call("POST", "/v1/tenants", { key: h.operatorKey, body: { slug: "acme", name: "Again" } });
    expect(dup.status).toBe(409);
    expect(dup.body.error.code).toBe("CONFLICT");
  });
});
