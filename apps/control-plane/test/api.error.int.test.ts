import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "./harness.ts";

describe("bad input gets a clear 400 naming the field", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => h.close());

  it("names each invalid body field", async () => {
    const res = await h.call("POST", "/v1/api-keys", { key: h.operatorKey, body: { name: "", scopes: ["root"], expiresAt: "tomorrow" } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("BAD_REQUEST");
    const paths = res.body.error.issues.map((i: { path: string }) => i.path).sort();
    expect(paths).toEqual(["body.expiresAt", "body.name", "body.scopes.0"]);
    expect(res.body.error.message).toContain("body.name");
  });

  it("rejects unknown body fields", async () => {
    const res = await h.call("POST", "/v1/api-keys", { key: h.operatorKey, body: { name: "x", scopes: ["admin"], owner: "me" } });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body.error.issues)).toContain("owner");
  });

  it("rejects an expiry in the past", async () => {
    const res = await h.call("POST", "/v1/api-keys", { key: h.operatorKey, body: { name: "x", scopes: ["admin"], expiresAt: "2001-01-01T00:00:00Z" } });
    expect(res.status).toBe(400);
    expect(res.body.error.issues[0].path).toBe("body.expiresAt");
  });

  it("refuses process filters on a packet-source capture, naming each field", async () => {
    const body = { name: "x", source: { kind: "packet", interface: "eth0" }, filter: { pids: [1], comm: "nginx", role: "server" } };
    const res = await h.call("POST", "/v1/captures", { key: h.operatorKey, body });
    expect(res.status).toBe(400);
    expect(res.body.error.issues.map((i: { path: string }) => i.path).sort()).toEqual(["body.filter.comm", "body.filter.pids"]);
    expect(res.body.error.message).toContain("socket");
    // The same filter with the socket source is fine.
    const ok = await h.call("POST", "/v1/captures", { key: h.operatorKey, body: { ...body, source: { kind: "socket" } } });
    expect(ok.status).toBe(201);
  });

  it("reports malformed JSON as a body error", async () => {
    const res = await h.call("POST", "/v1/api-keys", { key: h.operatorKey, rawBody: "{nope", headers: { "content-type": "application/json" } });
    expect(res.status).toBe(400);
    expect(res.body.error.issues[0].path).toBe("body");
  });

  it("names invalid query and path parameters", async () => {
    const q = await h.call("GET", "/v1/api-keys?limit=100000", { key: h.operatorKey });
    expect(q.status).toBe(400);
    expect(q.body.error.issues[0].path).toBe("query.limit");
    const cursor = await h.call("GET", "/v1/api-keys?cursor=%27%3B%20drop%20table", { key: h.operatorKey });
    expect(cursor.status).toBe(400);
    expect(cursor.body.error.issues[0].path).toBe("query.cursor");
    const p = await h.call("DELETE", "/v1/api-keys/' or 1=1 --", { key: h.operatorKey });
    expect(p.status).toBe(400);
    expect(p.body.error.issues[0].path).toBe("param.id");
  });

  it("validates tenant slugs", async () => {
    const res = await h.call("POST", "/v1/tenants", { key: h.operatorKey, body: { slug: "Not A Slug!", name: "x" } });
    expect(res.status).toBe(400);
    expect(res.body.error.issues[0].path).toBe("body.slug");
  });

  it("answers unknown routes with 404 in the same error shape", async () => {
    const res = await h.call("GET", "/no/such/route");
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe("NOT_FOUND");
    expect(res.body.error.requestId).toMatch(/^req_/);
  });

  it("refuses bodies over 1 MiB with 413", async () => {
    const res = await h.call("POST", "/v1/api-keys", { key: h.operatorKey, body: { name: "x".repeat(1_100_000), scopes: ["admin"] } });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe("PAYLOAD_TOO_LARGE");
  });

  it("serves an OpenAPI document listing every route", async () => {
    const res = await h.call("GET", "/openapi.json");
    expect(res.status).toBe(200);
    expect(Object.keys(res.body.paths).sort()).toEqual([
      "/apis/{tenant}/{name}",
      "/apis/{tenant}/{name}/openapi.json",
      "/bundles/latest.json",
      "/v1/agent-upgrades",
      "/v1/agent-upgrades/{id}",
      "/v1/agent-upgrades/{id}/cancel",
      "/v1/agents",
      "/v1/agents/self/deregister",
      "/v1/agents/{id}",
      "/v1/api-keys",
      "/v1/api-keys/{id}",
      "/v1/api-keys/{id}/rotate",
      "/v1/apis",
      "/v1/apis/{id}",
      "/v1/apis/{id}/consumers",
      "/v1/apis/{id}/consumers/{consumerId}",
      "/v1/apis/{id}/deprecate",
      "/v1/apis/{id}/publish",
      "/v1/apis/{id}/retire",
      "/v1/audit",
      "/v1/captures",
      "/v1/captures/{id}",
      "/v1/captures/{id}/records",
      "/v1/captures/{id}/stats",
      "/v1/captures/{id}/stop",
      "/v1/captures/{id}/stream",
      "/v1/enroll",
      "/v1/enrollment-tokens",
      "/v1/enrollment-tokens/{id}",
      "/v1/tenants",
      "/v1/whoami",
    ]);
    expect(res.body.paths["/v1/api-keys"].post.responses).toHaveProperty("400");
    // One path, two methods: reading an agent and removing it (which revokes its NATS credentials).
    expect(Object.keys(res.body.paths["/v1/agents/{id}"]).sort()).toEqual(["delete", "get"]);
  });

  it("exposes Prometheus metrics including request counts", async () => {
    await h.call("GET", "/healthz");
    const res = await h.call("GET", "/metrics");
    expect(res.status).toBe(200);
    expect(res.body).toMatch(/hdrcap_cp_http_requests_total\{method="GET",route="\/healthz",status="200"\} \d+/);
  });
});
