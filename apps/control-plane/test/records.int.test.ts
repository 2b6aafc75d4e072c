import type { HttpRecord } from "@hdrcap/api";
import { insertRecordRows } from "@hdrcap/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordRow } from "../src/messaging/ingester.ts";
import { createHarness, createTenant, type Harness } from "./harness.ts";

// The records API over rows inserted directly (the ingest path has its own tests).
const T0 = Date.parse("2026-11-20T10:00:00.000Z");

function makeRecord(i: number): HttpRecord {
  const request = i % 2 === 0;
  return {
    ts: new Date(T0 + i * 1000).toISOString(),
    connectionId: `conn-${Math.floor(i / 10)}`,
    kind: request ? "request" : "response",
    role: "server",
    src: { ip: request ? "10.1.0.5" : "10.1.0.1", port: request ? 50000 + (i % 50) : 8080 },
    dst: { ip: request ? "10.1.0.1" : "10.1.0.5", port: request ? 8080 : 50000 + (i % 50) },
    pid: 100,
    comm: "api",
    method: request ? (i % 4 === 0 ? "GET" : "POST") : null,
    path: request ? (i % 3 === 0 ? `/v1/users/${i}` : `/health`) : null,
    version: "HTTP/1.1",
    status: request ? null : i % 5 === 0 ? 500 : 200,
    reason: request ? null : "OK",
    latencyMs: request ? null : 2,
    headers: [
      { name: "Host", value: "api.test" },
      { name: i % 2 === 0 ? "X-Tenant" : "x-tenant", value: `t${i % 3}` },
      ...(i % 7 === 0 ? [{ name: "X-Debug", value: "1" }] : []),
      // a value holding "=", and a name holding "=" (not a token, but the ingester stores it) that must not pass for it
      ...(i % 11 === 0 ? [{ name: "X-Eq", value: "trap=v" }] : i % 11 === 1 ? [{ name: "X-Eq=Trap", value: "v" }] : []),
      { name: "X-Note", value: 'has "quotes", commas\nand newlines' },
    ],
    headerBytes: 100 + (i % 10),
    redacted: [],
  };
}

describe("records API", () => {
  let h: Harness;
  let key: string;
  const captureId = "cap_RecordsApiTest0001";
  const N = 300;
  const all = Array.from({ length: N }, (_, i) => makeRecord(i));
  const agentOf = (i: number) => (i < 200 ? "agt_AgentOne000000001" : "agt_AgentTwo000000002");

  beforeAll(async () => {
    h = await createHarness();
    key = h.operatorKey;
    const tenantId = (await h.call("GET", "/v1/whoami", { key })).body.tenant.id;
    await h.db.db
      .insertInto("captures")
      .values({ id: captureId, tenant_id: tenantId, name: "records", protocol: "http", selector: {}, filter: { role: "any" }, headers: { redactMode: "mask" }, limits: {}, hash_key: "k", status_reason: null, max_records: null, expires_at: null, stop_requested_at: null, ended_at: null, created_by_key_id: null })
      .execute();
    await insertRecordRows(h.db.db, all.map((r, i) => recordRow(r, { tenantId, captureId, agentId: agentOf(i) })));
  });
  afterAll(async () => h.close());

  const get = (q: string, k = key) => h.call("GET", `/v1/captures/${captureId}/records${q}`, { key: k });
  const expected = (pred: (r: HttpRecord, i: number) => boolean) => all.map((r, i) => ({ r, i })).filter(({ r, i }) => pred(r, i));
  const paths = (items: { path: string | null; ts: string }[]) => items.map((x) => `${x.ts}|${x.path}`);

  it("returns headers exactly as captured, in wire order with original case", async () => {
    const res = await get("?limit=2");
    expect(res.status).toBe(200);
    expect(res.body.items[0].headers).toEqual(all[0]!.headers);
    expect(res.body.items[1].headers).toEqual(all[1]!.headers);
    expect(res.body.items[0]).toMatchObject({ kind: "request", method: "GET", path: "/v1/users/0", agentId: agentOf(0), src: { ip: "10.1.0.5", port: 50000 } });
  });

  it("walks every record exactly once with the cursor, in both orders", async () => {
    for (const order of ["asc", "desc"] as const) {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res: { status: number; body: any } = await get(`?limit=70&order=${order}${cursor ? `&cursor=${cursor}` : ""}`);
        expect(res.status).toBe(200);
        seen.push(...res.body.items.map((r: { id: string }) => r.id));
        cursor = res.body.nextCursor;
      } while (cursor);
      expect(seen).toHaveLength(N);
      expect(new Set(seen).size).toBe(N);
      const numeric = seen.map(Number);
      expect(numeric).toEqual([...numeric].sort((a, b) => (order === "asc" ? a - b : b - a)));
    }
  });

  it.each([
    ["kind + method", "?kind=request&method=post", (r: HttpRecord) => r.kind === "request" && r.method === "POST"],
    ["path prefix", "?pathPrefix=/v1/users/", (r: HttpRecord) => r.path?.startsWith("/v1/users/") ?? false],
    ["status", "?status=500", (r: HttpRecord) => r.status === 500],
    ["time window", `?since=${new Date(T0 + 50_000).toISOString()}&until=${new Date(T0 + 60_000).toISOString()}`, (_r: HttpRecord, i: number) => i >= 50 && i < 60],
    ["agent", "?agent=agt_AgentTwo000000002", (_r: HttpRecord, i: number) => i >= 200],
    ["header value, name case-insensitive", "?header.X-TENANT=t1", (r: HttpRecord) => r.headers.some((x) => x.name.toLowerCase() === "x-tenant" && x.value === "t1")],
    ["hasHeader", "?hasHeader=x-debug", (r: HttpRecord) => r.headers.some((x) => x.name === "X-Debug")],
    ["header value holding '=' (not a name holding it)", "?header.x-eq=trap=v", (r: HttpRecord) => r.headers.some((x) => x.name === "X-Eq" && x.value === "trap=v")],
    ["hasHeader of a name whose value holds '='", "?hasHeader=x-eq", (r: HttpRecord) => r.headers.some((x) => x.name === "X-Eq")],
    ["everything at once", "?kind=request&hasHeader=X-Debug&header.x-tenant=t0&pathPrefix=/v1", (r: HttpRecord) => r.kind === "request" && r.headers.some((x) => x.name === "X-Debug") && r.headers.some((x) => x.name.toLowerCase() === "x-tenant" && x.value === "t0") && (r.path?.startsWith("/v1") ?? false)],
  ])("filters by %s", async (_what, q, pred) => {
    const res = await get(`${q}&limit=1000`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const want = expected(pred);
    expect(want.length).toBeGreaterThan(0);
    expect(paths(res.body.items)).toEqual(paths(want.map(({ r }) => r)));
  });

  it("exports every matching record as NDJSON, beyond the page limit", async () => {
    const res = await h.app.request(`/v1/captures/${captureId}/records?format=ndjson&kind=response`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/x-ndjson");
    const lines = (await res.text()).trimEnd().split("\n").map((l) => JSON.parse(l));
    expect(lines).toHaveLength(N / 2);
    expect(lines.map((l) => l.headers)).toEqual(all.filter((r) => r.kind === "response").map((r) => r.headers));
  });

  it("exports CSV with a header row and quoting that round-trips", async () => {
    const res = await h.app.request(`/v1/captures/${captureId}/records?format=csv&limit=1`, { headers: { authorization: `Bearer ${key}` } });
    const text = await res.text();
    expect(text.startsWith("id,ts,agentId,connectionId,kind,role,srcIp,srcPort,dstIp,dstPort,pid,comm,method,path,version,status,latencyMs,headers\r\n")).toBe(true);
    // One row per record; quoted cells may contain newlines, so count record terminators outside quotes.
    let rows = 0;
    let quoted = false;
    for (let i = 0; i < text.length; i++) {
      if (text[i] === '"') quoted = !quoted;
      else if (!quoted && text[i] === "\r" && text[i + 1] === "\n") rows++;
    }
    expect(rows).toBe(N + 1);
    expect(text).toContain('"Host: api.test\nX-Tenant: t0\nX-Debug: 1\nX-Note: has ""quotes"", commas\nand newlines"');
  });

  it("reports counts per agent over time, the header inventory and top values", async () => {
    const res = await h.call("GET", `/v1/captures/${captureId}/stats?bucketSeconds=100&header=X-Tenant`, { key });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.total).toBe(N);
    const one = res.body.byAgent.find((a: { agentId: string }) => a.agentId === "agt_AgentOne000000001");
    expect(one.buckets.map((b: { count: number }) => b.count)).toEqual([100, 100]);
    const inventory = Object.fromEntries(res.body.headers.map((x: { name: string; records: number; distinctValues: number }) => [x.name, [x.records, x.distinctValues]]));
    expect(inventory).toEqual({ host: [N, 1], "x-tenant": [N, 3], "x-note": [N, 1], "x-debug": [43, 1], "x-eq": [28, 1], "x-eq=trap": [28, 1] });
    expect(res.body.header).toEqual({ name: "x-tenant", distinctValues: 3, top: [{ value: "t0", count: 100 }, { value: "t1", count: 100 }, { value: "t2", count: 100 }] });
    expect(res.body.headerBytes.p50).toBeCloseTo(104.5, 5);
  });

  it.each([
    ["?status=abc", "query.status"],
    ["?since=yesterday", "query.since"],
    ["?limit=5000", "query.limit"],
    ["?kind=both", "query.kind"],
    ["?header.bad%20name=x", "query.header.bad name"],
    ["?cursor=%27%20or%201%3D1", "query.cursor"],
    ["?format=xml", "query.format"],
    ["?pathPrefix=" + "a".repeat(3000), "query.pathPrefix"],
  ])("rejects %s with 400 naming %s", async (q, path) => {
    const res = await get(q);
    expect(res.status).toBe(400);
    expect(res.body.error.issues.map((i: { path: string }) => i.path)).toContain(path);
  });

  it("hides the capture from other tenants on every records route", async () => {
    const other = await createTenant(h, "records-other");
    for (const path of ["/records", "/records?format=ndjson", "/records?format=csv", "/stats"]) {
      const res = await h.call("GET", `/v1/captures/${captureId}${path}`, { key: other.key });
      expect(res.status, path).toBe(404);
    }
  });

  it("gives the same page through tRPC", async () => {
    const rest = await get("?kind=request&header.x-tenant=t2&limit=10");
    const input = encodeURIComponent(JSON.stringify({ id: captureId, kind: "request", headers: [{ name: "X-Tenant", value: "t2" }], limit: 10 }));
    const viaTrpc = await h.call("GET", `/trpc/captures.records?input=${input}`, { key });
    expect(viaTrpc.status).toBe(200);
    expect(viaTrpc.body.result.data).toEqual(rest.body);
  });
});

describe("capture deletion and the audit log", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => h.close());

  it("deletes a capture with its records, leaves other captures alone, and audits it", async () => {
    const key = h.operatorKey;
    const tenantId = (await h.call("GET", "/v1/whoami", { key })).body.tenant.id;
    const a = await h.call("POST", "/v1/captures", { key, body: { name: "a" } });
    const b = await h.call("POST", "/v1/captures", { key, body: { name: "b" } });
    for (const cap of [a.body.id, b.body.id]) {
      await insertRecordRows(h.db.db, Array.from({ length: 10 }, (_, i) => recordRow(makeRecord(i), { tenantId, captureId: cap, agentId: "agt_AgentOne000000001" })));
    }
    const other = await createTenant(h, "deleting-other");
    expect((await h.call("DELETE", `/v1/captures/${a.body.id}`, { key: other.key })).status).toBe(404);

    const del = await h.call("DELETE", `/v1/captures/${a.body.id}`, { key });
    expect(del.status).toBe(200);
    expect(del.body).toEqual({ id: a.body.id, deletedRecords: 10 });
    expect((await h.call("GET", `/v1/captures/${a.body.id}`, { key })).status).toBe(404);
    expect((await h.call("GET", `/v1/captures/${b.body.id}/records`, { key })).body.items).toHaveLength(10);

    const audit = await h.call("GET", "/v1/audit?limit=5", { key });
    expect(audit.status).toBe(200);
    expect(audit.body.items[0]).toMatchObject({ action: "capture.delete", resourceId: a.body.id, details: { records: 10 } });
    expect(audit.body.items.map((e: { action: string }) => e.action)).toContain("capture.create");
    expect((await h.call("GET", "/v1/audit", { key: other.key })).body.items.map((e: { resourceId: string }) => e.resourceId)).not.toContain(a.body.id);
  });
});

describe("audit cursor", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => h.close());

  it.each(["abc", "99999999999999999999"])("refuses a forged audit cursor (%s) with 400 naming query.cursor", async (forged) => {
    const res = await h.call("GET", `/v1/audit?cursor=${Buffer.from(forged).toString("base64url")}`, { key: h.operatorKey });
    expect(res.status).toBe(400);
    expect(res.body.error.issues[0].path).toBe("query.cursor");
  });
});
