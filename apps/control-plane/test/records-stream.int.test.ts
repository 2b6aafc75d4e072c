import type { HttpRecord } from "@hdrcap/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordRow } from "../src/messaging/ingester.ts";
import { createHarness, createTenant, type Harness } from "./harness.ts";

const rec = (i: number, name: string): HttpRecord => ({
  ts: new Date(Date.now() + i).toISOString(),
  connectionId: "c",
  kind: "request",
  role: "server",
  src: { ip: "10.0.0.1", port: 1000 },
  dst: { ip: "10.0.0.2", port: 80 },
  pid: 1,
  comm: "x",
  method: "GET",
  path: `/${name}/${i}`,
  version: "HTTP/1.1",
  status: null,
  reason: null,
  latencyMs: null,
  headers: [{ name: "X-Set", value: name }],
  headerBytes: 40,
  redacted: [],
});

/** Reads SSE events from a fetch body until `count` records arrived or the time is up. */
async function readEvents(body: ReadableStream<Uint8Array>, count: number, timeoutMs = 8000): Promise<{ id: string; path: string }[]> {
  const reader = body.getReader();
  const events: { id: string; path: string }[] = [];
  let buffer = "";
  const deadline = Date.now() + timeoutMs;
  while (events.length < count && Date.now() < deadline) {
    const chunk = await Promise.race([reader.read(), new Promise<{ done: true; value: undefined }>((r) => setTimeout(() => r({ done: true, value: undefined }), deadline - Date.now()))]);
    if (chunk.done) break;
    buffer += new TextDecoder().decode(chunk.value);
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const id = /^id: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (id && data) events.push({ id, path: (JSON.parse(data) as { path: string }).path });
    }
  }
  await reader.cancel().catch(() => {});
  return events;
}

describe("records live tail (SSE)", () => {
  let h: Harness;
  let tenantId: string;
  const captureId = "cap_StreamTest00000001";
  const insert = (rows: { id: number; r: HttpRecord }[]) =>
    h.db.db
      .insertInto("records")
      .values(rows.map(({ id, r }) => ({ ...recordRow(r, { tenantId, captureId, agentId: "agt_AgentOne000000001" }), id: String(id) }) as never))
      .execute();

  beforeAll(async () => {
    h = await createHarness();
    tenantId = (await h.call("GET", "/v1/whoami", { key: h.operatorKey })).body.tenant.id;
    await h.db.db
      .insertInto("captures")
      .values({ id: captureId, tenant_id: tenantId, name: "s", protocol: "http", selector: {}, filter: {}, headers: {}, limits: {}, hash_key: "k", status_reason: null, max_records: null, expires_at: null, stop_requested_at: null, ended_at: null, created_by_key_id: null })
      .execute();
    await insert([{ id: 5, r: rec(0, "old") }]);
  });
  afterAll(async () => h.close());

  const open = (query = "", headers: Record<string, string> = {}) =>
    h.app.request(`/v1/captures/${captureId}/stream${query}`, { headers: { authorization: `Bearer ${h.operatorKey}`, ...headers } });

  it("streams only new matching records, including ones committed out of id order, and resumes with Last-Event-ID", async () => {
    const res = await open("?header.x-set=live");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const reading = readEvents(res.body!, 6);
    await new Promise((r) => setTimeout(r, 200));
    // Batch with higher ids commits first, then one with lower ids; plus a non-matching record.
    await insert([100, 101, 102].map((id, i) => ({ id, r: rec(i, "live") })));
    await new Promise((r) => setTimeout(r, 700));
    await insert([...[90, 91, 92].map((id, i) => ({ id, r: rec(10 + i, "live") })), { id: 93, r: rec(20, "other") }]);
    const events = await reading;
    expect(events.map((e) => e.id).sort()).toEqual(["100", "101", "102", "90", "91", "92"]);
    expect(events.every((e) => e.path.startsWith("/live/"))).toBe(true);

    // Resume after 102: only later records come.
    await insert([{ id: 110, r: rec(30, "live") }]);
    const resumed = await open("?header.x-set=live", { "last-event-id": "102" });
    expect((await readEvents(resumed.body!, 1)).map((e) => e.id)).toEqual(["110"]);
  });

  it("replays stored records with since", async () => {
    const res = await open(`?since=${new Date(0).toISOString()}&header.x-set=old`);
    expect((await readEvents(res.body!, 1)).map((e) => e.path)).toEqual(["/old/0"]);
  });

  it("refuses other tenants and bad input before streaming", async () => {
    const other = await createTenant(h, "stream-other");
    expect((await h.call("GET", `/v1/captures/${captureId}/stream`, { key: other.key })).status).toBe(404);
    const bad = await open("", { "last-event-id": "abc" });
    expect(bad.status).toBe(400);
    const badFilter = await open("?status=999");
    expect(badFilter.status).toBe(400);
  });
});
