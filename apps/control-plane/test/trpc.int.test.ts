import { insertRecordRows } from "@hdrcap/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordRow } from "../src/messaging/ingester.ts";
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

/**
 * One scenario — captures, records, stats, published APIs through their whole lifecycle,
 * consumers, enrollment tokens, keys, audit, and the errors along the way — run once over
 * REST and once over tRPC, each in a tenant of its own. After ids, times, secrets and the
 * tenant's slug are replaced by placeholders (in order of appearance), the two transcripts
 * must be identical, errors included (code and the fields their issues name).
 */
describe("the same scenario over REST and tRPC", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => h.close());

  type Outcome = { ok: true; data: unknown } | { ok: false; code: string; fields: string[] };
  interface Step {
    rest: [method: string, path: string, body?: unknown];
    trpc: [procedure: string, input?: unknown];
  }
  type Transport = (step: Step, key: string) => Promise<Outcome>;

  const restTransport: Transport = async ({ rest: [method, path, body] }, key) => {
    const res = await h.call(method, path, { key, body });
    if (res.status < 400) return { ok: true, data: res.body };
    return { ok: false, code: res.body.error.code, fields: (res.body.error.issues ?? []).map((i: { path: string }) => i.path.replace(/^(body|query|param)/, "")) };
  };
  const trpcTransport: Transport = async ({ trpc: [procedure, input], rest: [method] }, key) => {
    const query = method === "GET";
    const res = query
      ? await h.call("GET", `/trpc/${procedure}${input === undefined ? "" : `?input=${encodeURIComponent(JSON.stringify(input))}`}`, { key })
      : await h.call("POST", `/trpc/${procedure}`, { key, body: input });
    if (res.status < 400) return { ok: true, data: res.body.result.data };
    const data = res.body.error.data;
    // GONE travels as tRPC NOT_FOUND; apiCode keeps ours.
    return { ok: false, code: data.apiCode, fields: (data.issues ?? []).map((i: { path: string }) => i.path.replace(/^input/, "")) };
  };

  /** Runs the scenario as a fresh tenant; returns the transcript with ids, times and secrets as placeholders. */
  async function transcript(transport: Transport, slug: string): Promise<unknown[]> {
    const tenant = await h.call("POST", "/v1/tenants", { key: h.operatorKey, body: { slug, name: "Parity" } });
    const key: string = tenant.body.key;
    const out: Outcome[] = [];
    const run = async (step: Step) => {
      const o = await transport(step, key);
      out.push(o);
      return o.ok ? (o.data as any) : undefined;
    };
    const capture = await run({ rest: ["POST", "/v1/captures", { name: "parity", filter: { ports: [8080] } }], trpc: ["captures.create", { name: "parity", filter: { ports: [8080] } }] });
    const id = capture.id as string;
    await insertRecordRows(
      h.db.db,
      Array.from({ length: 6 }, (_, i) =>
        recordRow(
          {
            ts: new Date(Date.UTC(2026, 10, 25, 12, 0, i)).toISOString(),
            connectionId: `c-${i}`,
            kind: i % 2 ? "response" : "request",
            role: "server",
            src: { ip: "10.0.0.1", port: 40000 + i },
            dst: { ip: "10.0.0.2", port: 8080 },
            pid: 1,
            comm: "svc",
            method: i % 2 ? null : "GET",
            path: i % 2 ? null : `/users/${i}`,
            version: "HTTP/1.1",
            status: i % 2 ? 200 : null,
            reason: i % 2 ? "OK" : null,
            latencyMs: i % 2 ? 2 : null,
            headers: [{ name: "X-Tenant", value: `t${i % 3}` }],
            headerBytes: 20,
            redacted: [],
          },
          { tenantId: tenant.body.tenant.id, captureId: id, agentId: "agt_parity00000000" },
        ),
      ),
    );
    await run({ rest: ["GET", `/v1/captures/${id}`], trpc: ["captures.get", { id }] });
    await run({ rest: ["GET", "/v1/captures?limit=10"], trpc: ["captures.list", { limit: 10 }] });
    await run({ rest: ["GET", `/v1/captures/${id}/records?limit=2&kind=request&pathPrefix=/users/`], trpc: ["captures.records", { id, limit: 2, kind: "request", pathPrefix: "/users/" }] });
    const page = await run({ rest: ["GET", `/v1/captures/${id}/records?limit=4&order=desc`], trpc: ["captures.records", { id, limit: 4, order: "desc" }] });
    await run({ rest: ["GET", `/v1/captures/${id}/records?limit=4&order=desc&cursor=${page.nextCursor}`], trpc: ["captures.records", { id, limit: 4, order: "desc", cursor: page.nextCursor }] });
    await run({ rest: ["GET", `/v1/captures/${id}/records?header.x-tenant=t1`], trpc: ["captures.records", { id, headers: [{ name: "X-Tenant", value: "t1" }] }] });
    await run({ rest: ["GET", `/v1/captures/${id}/stats?bucketSeconds=3600&header=x-tenant`], trpc: ["captures.stats", { id, bucketSeconds: 3600, header: "x-tenant" }] });
    await run({ rest: ["GET", `/v1/captures/${id}/records?cursor=forged`], trpc: ["captures.records", { id, cursor: "forged" }] });

    const apiBody = { name: "parity-api", captureId: id, filter: { kind: "request" }, fields: ["ts", "method", "path"] };
    const api = await run({ rest: ["POST", "/v1/apis", apiBody], trpc: ["publishedApis.create", apiBody] });
    await run({ rest: ["POST", "/v1/apis", apiBody], trpc: ["publishedApis.create", apiBody] }); // CONFLICT on the name
    await run({ rest: ["POST", "/v1/apis", { ...apiBody, name: "x", fields: ["nope"] }], trpc: ["publishedApis.create", { ...apiBody, name: "x", fields: ["nope"] }] });
    await run({ rest: ["POST", `/v1/apis/${api.id}/publish`], trpc: ["publishedApis.publish", { id: api.id }] });
    await run({ rest: ["POST", `/v1/apis/${api.id}/publish`], trpc: ["publishedApis.publish", { id: api.id }] }); // CONFLICT: already published
    const consumer = await run({ rest: ["POST", `/v1/apis/${api.id}/consumers`, { name: "partner", rateLimit: { perSecond: 5, burst: 10 } }], trpc: ["publishedApis.createConsumer", { id: api.id, name: "partner", rateLimit: { perSecond: 5, burst: 10 } }] });
    const served = await h.call("GET", `/apis/${slug}/parity-api?limit=2`, { key: consumer.key });
    out.push({ ok: served.status === 200, data: served.body } as Outcome);
    await run({ rest: ["GET", `/v1/apis/${api.id}/consumers`], trpc: ["publishedApis.listConsumers", { id: api.id }] });
    const sunset = "2030-01-01T00:00:00.000Z";
    await run({ rest: ["POST", `/v1/apis/${api.id}/deprecate`, { sunset }], trpc: ["publishedApis.deprecate", { id: api.id, sunset }] });
    await run({ rest: ["DELETE", `/v1/apis/${api.id}/consumers/${consumer.consumer.id}`], trpc: ["publishedApis.revokeConsumer", { id: api.id, consumerId: consumer.consumer.id }] });
    await run({ rest: ["DELETE", `/v1/apis/${api.id}`], trpc: ["publishedApis.remove", { id: api.id }] }); // CONFLICT: deprecated
    await run({ rest: ["POST", `/v1/apis/${api.id}/retire`], trpc: ["publishedApis.retire", { id: api.id }] });
    await run({ rest: ["GET", "/v1/apis"], trpc: ["publishedApis.list", { limit: 100 }] });
    await run({ rest: ["DELETE", `/v1/apis/${api.id}`], trpc: ["publishedApis.remove", { id: api.id }] });
    await run({ rest: ["GET", `/v1/apis/${api.id}`], trpc: ["publishedApis.get", { id: api.id }] }); // NOT_FOUND

    const token = await run({ rest: ["POST", "/v1/enrollment-tokens", { labels: { env: "ci" }, maxUses: 3 }], trpc: ["agents.createEnrollmentToken", { labels: { env: "ci" }, maxUses: 3 }] });
    await run({ rest: ["DELETE", `/v1/enrollment-tokens/${token.enrollmentToken.id}`], trpc: ["agents.revokeEnrollmentToken", { id: token.enrollmentToken.id }] });
    await run({ rest: ["GET", "/v1/agents"], trpc: ["agents.list", { limit: 100 }] });
    await run({ rest: ["GET", "/v1/agents/agt_Ghost0000000000000000"], trpc: ["agents.get", { id: "agt_Ghost0000000000000000" }] });
    const reader = await run({ rest: ["POST", "/v1/api-keys", { name: "reader", scopes: ["captures:read"] }], trpc: ["apiKeys.create", { name: "reader", scopes: ["captures:read"] }] });
    await run({ rest: ["POST", "/v1/api-keys", { name: "", scopes: ["root"] }], trpc: ["apiKeys.create", { name: "", scopes: ["root"] }] });
    out.push(await transport({ rest: ["POST", "/v1/captures", { name: "denied" }], trpc: ["captures.create", { name: "denied" }] }, reader.key)); // FORBIDDEN
    await run({ rest: ["POST", `/v1/captures/${id}/stop`], trpc: ["captures.stop", { id }] });
    await run({ rest: ["DELETE", `/v1/captures/${id}`], trpc: ["captures.remove", { id }] });
    await run({ rest: ["GET", "/v1/audit?limit=100"], trpc: ["audit.list", { limit: 100 }] });
    return normalize(out, slug);
  }

  function normalize(value: unknown, slug: string): unknown[] {
    const names = new Map<string, string>();
    const placeholder = (s: string, kind: string) => {
      if (!names.has(`${kind}:${s}`)) names.set(`${kind}:${s}`, `<${kind}${names.size}>`);
      return names.get(`${kind}:${s}`)!;
    };
    const walk = (v: unknown, key = "", parent: object = {}): unknown => {
      if (Array.isArray(v)) return v.map((x) => walk(x));
      if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k, v)]));
      if (typeof v !== "string") return v;
      if (/^\d{4}-\d\d-\d\dT/.test(v) && !v.startsWith("2026-11-25T12:") && !v.startsWith("2030-")) return "<now>";
      if (/^(hc|hcc|hcet)_/.test(v)) return `<secret ${key}>`;
      if (key === "nextCursor" || key === "requestId" || key === "ip" || key === "version") return `<${key}>`;
      if (/^[a-z]{3}_[A-Za-z0-9]{8,}$/.test(v)) return placeholder(v, v.slice(0, 3));
      // Record and audit ids: sequences shared by both tenants.
      if (key === "id" && /^\d+$/.test(v)) return placeholder(v, "action" in parent ? "audit" : "record");
      return v.replaceAll(slug, "<tenant>").replace(/\b[a-z]{3}_[A-Za-z0-9]{8,}\b/g, (m) => placeholder(m, m.slice(0, 3)));
    };
    return walk(value) as unknown[];
  }

  it("gives the same transcript through both, errors included", async () => {
    const viaRest = await transcript(restTransport, "parity-rest");
    const viaTrpc = await transcript(trpcTransport, "parity-trpc");
    expect(viaRest.length).toBeGreaterThan(30);
    // Not vacuous: the scenario saw records, a served page, and each kind of error.
    const text = JSON.stringify(viaRest);
    for (const code of ["CONFLICT", "NOT_FOUND", "BAD_REQUEST", "FORBIDDEN"]) expect(text).toContain(code);
    expect(text).toContain("/users/2");
    expect(viaTrpc).toEqual(viaRest);
  });
});
