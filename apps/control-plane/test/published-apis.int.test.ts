import type { HttpRecord } from "@hdrcap/api";
import { insertRecordRows } from "@hdrcap/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordRow } from "../src/messaging/ingester.ts";
import { createHarness, createTenant, type Harness } from "./harness.ts";

// Published APIs end to end: records inserted directly, the API managed by a tenant
// over REST and tRPC, and served to consumers at /apis/<tenant>/<name>.
const T0 = Date.parse("2026-11-20T10:00:00.000Z");
const N = 120;

function makeRecord(i: number): HttpRecord {
  const request = i % 2 === 0;
  return {
    ts: new Date(T0 + i * 1000).toISOString(),
    connectionId: `conn-${Math.floor(i / 10)}`,
    kind: request ? "request" : "response",
    role: "server",
    src: { ip: "10.1.0.5", port: 50000 + (i % 50) },
    dst: { ip: "10.1.0.1", port: 8080 },
    pid: 100,
    comm: "api",
    method: request ? (i % 4 === 0 ? "GET" : "POST") : null,
    path: request ? (i % 3 === 0 ? `/v1/users/${i}` : "/health") : null,
    version: "HTTP/1.1",
    status: request ? null : 200,
    reason: request ? null : "OK",
    latencyMs: request ? null : 2,
    headers: [
      { name: "Host", value: "api.test" },
      { name: "X-Tenant", value: i % 4 === 0 ? "t1" : "t2" },
    ],
    headerBytes: 100,
    redacted: [],
  };
}

const all = Array.from({ length: N }, (_, i) => makeRecord(i));
// The fixed filter of the main API below, evaluated in the test.
const matches = (r: HttpRecord) => r.kind === "request" && (r.path?.startsWith("/v1/users/") ?? false) && r.headers.some((h) => h.name === "X-Tenant" && h.value === "t1");
const FIELDS = ["ts", "method", "path", "headers"];

describe("published APIs", () => {
  let h: Harness;
  let a: { id: string; key: string };
  let b: { id: string; key: string };
  const captureA = "cap_PublishedApisTestA01";
  const captureB = "cap_PublishedApisTestB01";

  async function insertCapture(tenantId: string, id: string) {
    await h.db.db
      .insertInto("captures")
      .values({ id, tenant_id: tenantId, name: id, protocol: "http", selector: {}, filter: { role: "any" }, headers: { redactMode: "mask" }, limits: {}, hash_key: "k", status_reason: null, max_records: null, expires_at: null, stop_requested_at: null, ended_at: null, created_by_key_id: null })
      .execute();
  }

  beforeAll(async () => {
    h = await createHarness();
    a = await createTenant(h, "acme");
    b = await createTenant(h, "beta");
    await insertCapture(a.id, captureA);
    await insertCapture(b.id, captureB);
    await insertRecordRows(h.db.db, all.map((r) => recordRow(r, { tenantId: a.id, captureId: captureA, agentId: "agt_AgentOne000000001" })));
    await insertRecordRows(h.db.db, all.map((r) => recordRow(r, { tenantId: b.id, captureId: captureB, agentId: "agt_AgentTwo000000002" })));
  });
  afterAll(async () => h.close());

  const createApi = (key: string, body: Record<string, unknown>) => h.call("POST", "/v1/apis", { key, body });
  const mainApiBody = {
    name: "users",
    captureId: captureA,
    filter: { kind: "request", pathPrefix: "/v1/users/", headers: [{ name: "X-Tenant", value: "t1" }] },
    fields: FIELDS,
    description: "Requests to /v1/users of tenant t1",
  };
  const serve = (path: string, key?: string) => h.call("GET", path, { key });
  const newConsumer = async (apiId: string, body: Record<string, unknown> = { name: "partner" }) => {
    const res = await h.call("POST", `/v1/apis/${apiId}/consumers`, { key: a.key, body });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body as { consumer: { id: string; prefix: string }; key: string };
  };

  it("rejects invalid definitions with 400 naming each field", async () => {
    const res = await createApi(a.key, { name: "Not A Slug", captureId: "nope", filter: { status: 999, bogus: 1 }, fields: ["ts", "password", "ts"] });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("BAD_REQUEST");
    const paths = res.body.error.issues.map((i: { path: string }) => i.path);
    expect(paths).toEqual(expect.arrayContaining(["body.name", "body.captureId", "body.filter.status", "body.filter", "body.fields.1"]));

    const empty = await createApi(a.key, { name: "x1", captureId: captureA, fields: [] });
    expect(empty.status).toBe(400);
    expect(empty.body.error.issues.map((i: { path: string }) => i.path)).toEqual(["body.fields"]);
    const repeated = await createApi(a.key, { name: "x1", captureId: captureA, fields: ["ts", "ts"] });
    expect(repeated.status).toBe(400);
    expect(repeated.body.error.message).toContain("body.fields");
    // Postgres cannot store NUL: refused up front, never a 500.
    const nul = await createApi(a.key, { name: "x1", captureId: captureA, fields: ["ts"], description: "a\u0000b", filter: { pathPrefix: "/\u0000" } });
    expect(nul.status).toBe(400);
    expect(nul.body.error.issues.map((i: { path: string }) => i.path).sort()).toEqual(["body.description", "body.filter.pathPrefix"]);
    const badPath = await h.call("GET", "/apis/acme/%00");
    expect(badPath.status).toBe(400);
    expect(badPath.body.error.issues[0].path).toBe("param.name");
  });

  it("refuses to publish another tenant's capture (404 naming captureId)", async () => {
    const res = await createApi(a.key, { ...mainApiBody, name: "stolen", captureId: captureB });
    expect(res.status).toBe(404);
    expect(res.body.error.issues).toEqual([{ path: "body.captureId", message: "no such capture" }]);
  });

  it("serves nothing while draft, exactly the filtered records and fields once published", async () => {
    const created = await createApi(a.key, mainApiBody);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ name: "users", state: "draft", captureId: captureA, fields: FIELDS, path: "/apis/acme/users", publishedAt: null });
    expect(created.body.filter.headers).toEqual([{ name: "x-tenant", value: "t1" }]);
    const id = created.body.id;
    expect((await createApi(a.key, mainApiBody)).status).toBe(409);

    const { key, consumer } = await newConsumer(id);
    expect(key).toMatch(/^hcc_[0-9A-Za-z]{32}$/);
    expect(key.startsWith(consumer.prefix)).toBe(true);
    const stored = await h.db.db.selectFrom("published_api_consumers").selectAll().where("id", "=", consumer.id).executeTakeFirstOrThrow();
    expect(stored.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(stored)).not.toContain(key);

    const draft = await serve("/apis/acme/users", key);
    expect(draft.status).toBe(404);
    expect((await serve("/apis/acme/users/openapi.json")).status).toBe(404);

    const published = await h.call("POST", `/v1/apis/${id}/publish`, { key: a.key });
    expect(published.status).toBe(200);
    expect(published.body.state).toBe("published");
    expect(published.body.publishedAt).not.toBeNull();

    const want = all.filter(matches);
    expect(want.length).toBeGreaterThan(3);
    const res = await serve("/apis/acme/users?limit=1000", key);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.headers.get("deprecation")).toBeNull();
    expect(res.body.items).toEqual(want.map((r) => ({ ts: r.ts, method: r.method, path: r.path, headers: r.headers })));
    for (const item of res.body.items) expect(Object.keys(item)).toEqual(FIELDS);

    // The consumer's window and paging narrow the fixed filter, page by page.
    const since = new Date(T0 + 20_000).toISOString();
    const windowed: unknown[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: any } = await serve(`/apis/acme/users?since=${since}&order=desc&limit=2${cursor ? `&cursor=${cursor}` : ""}`, key);
      expect(page.status).toBe(200);
      windowed.push(...page.body.items.map((r: { ts: string }) => r.ts));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(windowed).toEqual(want.filter((r) => r.ts >= since).map((r) => r.ts).reverse());

    // Nothing can widen or replace the fixed filter: unknown parameters are refused.
    const widen = await serve("/apis/acme/users?kind=response", key);
    expect(widen.status).toBe(400);
    expect(widen.body.error.message).toContain("kind");
    const badLimit = await serve("/apis/acme/users?limit=5000", key);
    expect(badLimit.status).toBe(400);
    expect(badLimit.body.error.issues[0].path).toBe("query.limit");
  });

  it("accepts only live consumer keys of that very API", async () => {
    const other = await createApi(a.key, { name: "responses", captureId: captureA, filter: { kind: "response" }, fields: ["ts", "status"] });
    await h.call("POST", `/v1/apis/${other.body.id}/publish`, { key: a.key });
    const otherKey = (await newConsumer(other.body.id)).key;
    const api = (await h.call("GET", "/v1/apis", { key: a.key })).body.items.find((x: { name: string }) => x.name === "users");
    const mine = await newConsumer(api.id, { name: "to-revoke" });

    expect((await serve("/apis/acme/responses", otherKey)).status).toBe(200);
    for (const [what, key] of [["no key", undefined], ["a tenant API key", a.key], ["another API's consumer key", otherKey], ["garbage", "hcc_x"]] as const) {
      const res = await serve("/apis/acme/users", key);
      expect(res.status, what).toBe(401);
      expect(res.body.error.code).toBe("UNAUTHORIZED");
    }
    // Consumer keys are not API keys either.
    expect((await h.call("GET", "/v1/whoami", { key: mine.key })).status).toBe(401);

    expect((await serve("/apis/acme/users", mine.key)).status).toBe(200);
    const revoked = await h.call("DELETE", `/v1/apis/${api.id}/consumers/${mine.consumer.id}`, { key: a.key });
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).not.toBeNull();
    expect((await serve("/apis/acme/users", mine.key)).status).toBe(401);

    const listed = await h.call("GET", `/v1/apis/${api.id}/consumers`, { key: a.key });
    expect(listed.status).toBe(200);
    expect(listed.body.items.find((c: { id: string }) => c.id === mine.consumer.id).revokedAt).not.toBeNull();
    expect(JSON.stringify(listed.body)).not.toContain(mine.key);
  });

  it("rate-limits each consumer on its own (429 with Retry-After)", async () => {
    const api = (await h.call("GET", "/v1/apis", { key: a.key })).body.items.find((x: { name: string }) => x.name === "users");
    const slow = await newConsumer(api.id, { name: "slow", rateLimit: { perSecond: 1, burst: 2 } });
    const other = await newConsumer(api.id, { name: "other" });
    expect((await serve("/apis/acme/users?limit=1", slow.key)).status).toBe(200);
    expect((await serve("/apis/acme/users?limit=1", slow.key)).status).toBe(200);
    const limited = await serve("/apis/acme/users?limit=1", slow.key);
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe("TOO_MANY_REQUESTS");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect((await serve("/apis/acme/users?limit=1", other.key)).status).toBe(200);
  });

  it("documents itself with exactly its fields, its parameters and its auth scheme", async () => {
    const res = await serve("/apis/acme/users/openapi.json");
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe("3.1.0");
    expect(Object.keys(res.body.paths)).toEqual(["/apis/acme/users"]);
    const record = res.body.components.schemas.Record;
    expect(Object.keys(record.properties)).toEqual(FIELDS);
    expect(record.required).toEqual(FIELDS);
    expect(record.properties.headers).toMatchObject({ type: "array", items: { type: "object" } });
    const op = res.body.paths["/apis/acme/users"].get;
    expect(op.parameters.map((p: { name: string }) => p.name)).toEqual(["since", "until", "limit", "cursor", "order"]);
    expect(op.security).toEqual([{ ConsumerKey: [] }]);
    expect(res.body.components.securitySchemes.ConsumerKey).toMatchObject({ type: "http", scheme: "bearer" });
    expect(op.responses["410"]).toBeDefined();

    // The platform's own document lists the serving routes under the consumer-key scheme.
    const main = await h.call("GET", "/openapi.json");
    expect(main.body.components.securitySchemes.ConsumerKey).toMatchObject({ type: "http", scheme: "bearer" });
    expect(main.body.paths["/apis/{tenant}/{name}"].get.security).toEqual([{ ConsumerKey: [] }]);
  });

  it("deprecates with Deprecation and Sunset headers, then retires with 410 Gone", async () => {
    const api = (await h.call("GET", "/v1/apis", { key: a.key })).body.items.find((x: { name: string }) => x.name === "users");
    const { key } = await newConsumer(api.id, { name: "lifecycle" });

    expect((await h.call("POST", `/v1/apis/${api.id}/deprecate`, { key: a.key, body: { sunset: "2020-01-01T00:00:00Z" } })).status).toBe(400);
    const sunset = "2030-06-30T00:00:00.000Z";
    const deprecated = await h.call("POST", `/v1/apis/${api.id}/deprecate`, { key: a.key, body: { sunset } });
    expect(deprecated.status, JSON.stringify(deprecated.body)).toBe(200);
    expect(deprecated.body).toMatchObject({ state: "deprecated", sunsetAt: sunset });

    const served = await serve("/apis/acme/users?limit=1", key);
    expect(served.status).toBe(200);
    expect(served.body.items).toHaveLength(1);
    expect(served.headers.get("deprecation")).toBe(`@${Math.floor(Date.parse(deprecated.body.deprecatedAt) / 1000)}`);
    expect(served.headers.get("sunset")).toBe(new Date(sunset).toUTCString());
    expect((await serve("/apis/acme/users/openapi.json")).body.paths["/apis/acme/users"].get.deprecated).toBe(true);

    const again = await h.call("POST", `/v1/apis/${api.id}/deprecate`, { key: a.key });
    expect(again.status).toBe(409);
    expect(again.body.error.message).toContain("only a published API can be deprecated");

    expect((await h.call("DELETE", `/v1/apis/${api.id}`, { key: a.key })).status).toBe(409);
    const retired = await h.call("POST", `/v1/apis/${api.id}/retire`, { key: a.key });
    expect(retired.status).toBe(200);
    expect(retired.body.state).toBe("retired");

    const gone = await serve("/apis/acme/users", key);
    expect(gone.status).toBe(410);
    expect(gone.body.error).toMatchObject({ code: "GONE", requestId: expect.any(String) });
    expect(gone.body.error.message).toContain("retired");
    expect((await serve("/apis/acme/users/openapi.json")).status).toBe(410);

    for (const verb of ["publish", "deprecate", "retire"]) {
      const res = await h.call("POST", `/v1/apis/${api.id}/${verb}`, { key: a.key });
      expect(res.status, verb).toBe(409);
      expect(res.body.error.code).toBe("CONFLICT");
    }
    expect((await h.call("POST", `/v1/apis/${api.id}/consumers`, { key: a.key, body: { name: "late" } })).status).toBe(409);

    const deleted = await h.call("DELETE", `/v1/apis/${api.id}`, { key: a.key });
    expect(deleted.status).toBe(200);
    expect((await h.call("GET", `/v1/apis/${api.id}`, { key: a.key })).status).toBe(404);
    expect((await serve("/apis/acme/users", key)).status).toBe(404);
  });

  it("refuses transitions that skip a state, and deletes drafts", async () => {
    const draft = await createApi(a.key, { name: "draft-only", captureId: captureA, fields: ["ts"] });
    for (const verb of ["deprecate", "retire"]) {
      const res = await h.call("POST", `/v1/apis/${draft.body.id}/${verb}`, { key: a.key });
      expect(res.status, verb).toBe(409);
    }
    const published = await createApi(a.key, { name: "live", captureId: captureA, fields: ["ts"] });
    await h.call("POST", `/v1/apis/${published.body.id}/publish`, { key: a.key });
    const del = await h.call("DELETE", `/v1/apis/${published.body.id}`, { key: a.key });
    expect(del.status).toBe(409);
    expect(del.body.error.message).toContain("retire it first");
    expect((await h.call("DELETE", `/v1/apis/${draft.body.id}`, { key: a.key })).body).toEqual({ id: draft.body.id, deleted: true });
  });

  it("keeps tenants apart: another tenant sees and changes nothing (404)", async () => {
    const mine = await createApi(a.key, { name: "private", captureId: captureA, fields: ["ts"] });
    const id = mine.body.id;
    const { consumer } = await newConsumer(id);
    const asB = (method: string, path: string, body?: unknown) => h.call(method, path, { key: b.key, body });
    expect((await asB("GET", `/v1/apis/${id}`)).status).toBe(404);
    expect((await asB("GET", "/v1/apis")).body.items).toEqual([]);
    for (const [method, path, body] of [
      ["POST", `/v1/apis/${id}/publish`],
      ["POST", `/v1/apis/${id}/deprecate`],
      ["POST", `/v1/apis/${id}/retire`],
      ["DELETE", `/v1/apis/${id}`],
      ["GET", `/v1/apis/${id}/consumers`],
      ["POST", `/v1/apis/${id}/consumers`, { name: "intruder" }],
      ["DELETE", `/v1/apis/${id}/consumers/${consumer.id}`],
    ] as const) {
      const res = await asB(method, path, body);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error.code).toBe("NOT_FOUND");
    }
    expect((await h.call("GET", `/v1/apis/${id}`, { key: a.key })).body.state).toBe("draft");
    // The same name is free in another tenant, served under that tenant's slug.
    const theirs = await createApi(b.key, { name: "private", captureId: captureB, fields: ["ts"] });
    expect(theirs.status).toBe(201);
    expect(theirs.body.path).toBe("/apis/beta/private");
  });

  it("audits every mutating call", async () => {
    const res = await h.call("GET", "/v1/audit?limit=1000", { key: a.key });
    const actions = new Set(res.body.items.map((e: { action: string }) => e.action));
    for (const action of ["published_api.create", "published_api.publish", "published_api.deprecate", "published_api.retire", "published_api.delete", "published_api.consumer.create", "published_api.consumer.revoke"]) {
      expect(actions, action).toContain(action);
    }
  });

  it("needs captures:write to manage and captures:read to look", async () => {
    const reader = await h.call("POST", "/v1/api-keys", { key: a.key, body: { name: "reader", scopes: ["captures:read"] } });
    expect((await h.call("GET", "/v1/apis", { key: reader.body.key })).status).toBe(200);
    expect((await createApi(reader.body.key, { name: "nope", captureId: captureA, fields: ["ts"] })).status).toBe(403);
  });

  it("works the same through tRPC", async () => {
    const trpc = (path: string, input: unknown, mutation = true) =>
      h.call(mutation ? "POST" : "GET", mutation ? `/trpc/${path}` : `/trpc/${path}?input=${encodeURIComponent(JSON.stringify(input))}`, { key: a.key, body: mutation ? input : undefined });
    const created = await trpc("publishedApis.create", { name: "via-trpc", captureId: captureA, filter: { kind: "response" }, fields: ["ts", "status"] });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    const api = created.body.result.data;
    expect(api).toMatchObject({ state: "draft", path: "/apis/acme/via-trpc" });

    const bad = await trpc("publishedApis.create", { name: "x", captureId: captureA, fields: ["nope"] });
    expect(bad.status).toBe(400);
    expect(bad.body.error.data.issues.map((i: { path: string }) => i.path).sort()).toEqual(["input.fields.0", "input.name"]);

    expect((await trpc("publishedApis.get", { id: api.id }, false)).body.result.data.id).toBe(api.id);
    expect((await trpc("publishedApis.list", { limit: 100 }, false)).body.result.data.items.map((x: { id: string }) => x.id)).toContain(api.id);
    expect((await trpc("publishedApis.retire", { id: api.id })).body.error.data.apiCode).toBe("CONFLICT");
    expect((await trpc("publishedApis.publish", { id: api.id })).body.result.data.state).toBe("published");

    const consumer = (await trpc("publishedApis.createConsumer", { id: api.id, name: "trpc-consumer" })).body.result.data;
    const served = await serve("/apis/acme/via-trpc?limit=1000", consumer.key);
    expect(served.status).toBe(200);
    expect(served.body.items).toEqual(all.filter((r) => r.kind === "response").map((r) => ({ ts: r.ts, status: r.status })));
    expect((await trpc("publishedApis.listConsumers", { id: api.id, limit: 10 }, false)).body.result.data.items).toHaveLength(1);
    expect((await trpc("publishedApis.revokeConsumer", { id: api.id, consumerId: consumer.consumer.id })).body.result.data.revokedAt).not.toBeNull();
    expect((await serve("/apis/acme/via-trpc", consumer.key)).status).toBe(401);

    expect((await trpc("publishedApis.deprecate", { id: api.id })).body.result.data.state).toBe("deprecated");
    expect((await trpc("publishedApis.retire", { id: api.id })).body.result.data.state).toBe("retired");
    expect((await trpc("publishedApis.remove", { id: api.id })).body.result.data).toEqual({ id: api.id, deleted: true });

    const foreign = await h.call("GET", `/trpc/publishedApis.get?input=${encodeURIComponent(JSON.stringify({ id: api.id }))}`, { key: b.key });
    expect(foreign.status).toBe(404);
  });
});
