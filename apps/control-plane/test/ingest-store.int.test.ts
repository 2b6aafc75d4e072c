import type { HttpRecord } from "@hdrcap/api";
import { storeRecordBatch } from "@hdrcap/db";
import { freshDatabase, type TestDatabase } from "@hdrcap/testkit";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { recordRow } from "../src/messaging/ingester.ts";
import { seedCapture, syntheticRecord, type SeededCapture } from "./ingest-harness.ts";

const storedRowsWithId = async (db: TestDatabase, captureId: string, recordId: string) =>
  (await db.sql<[{ n: number }]>`select count(*)::int as n from records where capture_id = ${captureId} and headers->1->>1 = ${recordId}`)[0].n;

// storeRecordBatch writes a batch in one statement (unnest over column arrays
// filled straight from the records as agents send them). Rows must come back byte for byte whatever the
// header values hold and equal the ingester's reference mapping (recordRow), a
// batch id is claimed once, and a row Postgres refuses leaves nothing behind.

const batchOf = (_batchId: string, records: HttpRecord[]) => ({ records });

const awkward = (): HttpRecord => ({
  ...syntheticRecord("awkward", 0),
  path: "/a\tb\\c\nd\"e'f?q=ü&x=\u0001",
  comm: "we\\ird\tcomm",
  headers: [
    { name: "X-Tab", value: "a\tb" },
    { name: "X-Backslash", value: "C:\\path\\to\\\"file\"" },
    { name: "X-Newline", value: "line1\r\nline2" },
    { name: "X-Unicode", value: "naïve ☃ \u{1F600}" },
    { name: "X-Json", value: '{"k":[1,2,"\\u0000"]}' },
    { name: "X-Quote\"Name", value: "" },
    { name: " X-Odd\\{a,b}NULL ", value: "array literal syntax in a name" },
    { name: "x-tab", value: "dup" },
    { name: "X-Eq=Name", value: "no terms: a name holding = would read as a name=value term" },
  ],
});

describe("storing a record batch", () => {
  let db: TestDatabase;
  let seed: SeededCapture;

  beforeAll(async () => {
    db = await freshDatabase(inject("pgAdminUrl"));
    seed = await seedCapture(db.db, { agents: 1 });
  });
  afterAll(async () => db?.drop());

  const ids = () => ({ tenantId: seed.tenantId, captureId: seed.captureId, agentId: seed.agentIds[0]! });
  const readBack = async (batchId: string) =>
    (
      await db.sql`select ts, tenant_id, capture_id, agent_id, connection_id, kind, direction, role, src_ip::text as src_ip, src_port,
                          dst_ip::text as dst_ip, dst_port, pid, comm, method, path, version, status, latency_ms, headers, header_terms, header_bytes
                   from records where capture_id = ${seed.captureId} and connection_id = ${batchId} order by id`
    ).map((r) => ({ ...r }));

  it("keeps awkward header values intact and maps every field as recordRow does", async () => {
    const batchId = "awkward-1";
    const records = [
      awkward(),
      { ...awkward(), kind: "response" as const, method: null, path: null, status: 503, latencyMs: 12.25, headers: [] },
      { ...awkward(), role: "client" as const },
      { ...awkward(), role: "client" as const, kind: "response" as const, status: 200 },
      { ...awkward(), role: "unknown" as const, ts: "2026-11-25T10:11:12.345Z", headerBytes: 0 },
    ].map((r) => ({ ...r, connectionId: batchId }));
    const outcome = await storeRecordBatch(db.db, { batchId, ...ids(), ...batchOf(batchId, records) });
    expect(outcome).toBe("stored");
    const stored = await readBack(batchId);
    expect(stored).toEqual(
      records.map((record) => {
        const r = recordRow(record, ids());
        return { ...r, src_ip: `${r.src_ip}/32`, dst_ip: `${r.dst_ip}/32` };
      }),
    );
    expect(stored.map((r) => r.direction)).toEqual(["ingress", "egress", "egress", "ingress", "ingress"]);
    expect(stored[0]!.header_terms).toEqual([
      "x-tab", "x-tab=a\tb", "x-backslash", "x-backslash=C:\\path\\to\\\"file\"", "x-newline", "x-newline=line1\r\nline2", "x-unicode",
      "x-unicode=naïve ☃ \u{1F600}", "x-json", 'x-json={"k":[1,2,"\\u0000"]}', 'x-quote"name', 'x-quote"name=', " x-odd\\{a,b}null ",
      " x-odd\\{a,b}null =array literal syntax in a name", "x-tab=dup",
    ]);
    expect(stored[1]!.headers).toEqual([]);
    expect(stored[1]!.header_terms).toEqual([]);
  });

  it("stores values that hold the batch text's separators (record, unit, group separator) unchanged", async () => {
    const batchId = "separators-1";
    const records = [
      { ...awkward(), connectionId: batchId, comm: "\x1d", path: "/a\x1eb", headers: [{ name: "X-Sep\x1f", value: "\x1d\x1e\x1f" }] },
      { ...awkward(), connectionId: batchId, method: null, kind: "response" as const },
      { ...awkward(), connectionId: batchId, comm: "\x1d" },
      { ...awkward(), connectionId: batchId, version: "HTTP/1.1\x1e" },
      { ...awkward(), connectionId: batchId, headers: [{ name: "X-Fs", value: "a\x1cb" }, { name: "X-Fs\x1c", value: "" }] },
    ];
    // each alone in its batch too: any one of them must divert the batch from the separated text
    for (const [i, record] of records.entries()) expect(await storeRecordBatch(db.db, { batchId: `${batchId}.${i}`, ...ids(), records: [record] })).toBe("stored");
    expect(await storeRecordBatch(db.db, { batchId, ...ids(), ...batchOf(batchId, records) })).toBe("stored");
    const stored = await readBack(batchId); // the five alone, then the five together
    expect(stored.map((r) => [r.comm, r.path, r.method, r.version, r.headers, r.header_terms])).toEqual(
      [...records, ...records].map((record) => {
        const r = recordRow(record, ids());
        return [r.comm, r.path, r.method, r.version, r.headers, r.header_terms];
      }),
    );
    expect(stored[2]!.comm).toBe("\x1d"); // not NULL
  });

  it("claims a batch id once and refuses captures not assigned to the agent", async () => {
    const batchId = "once-1";
    const batch = batchOf(batchId, [syntheticRecord("once", 1)]);
    expect(await storeRecordBatch(db.db, { batchId, ...ids(), ...batch })).toBe("stored");
    expect(await storeRecordBatch(db.db, { batchId, ...ids(), ...batch })).toBe("duplicate");
    expect(await storeRecordBatch(db.db, { batchId: `${batchId}-x`, ...ids(), tenantId: "ten_other", ...batch })).toBe("unknown-capture");
    const [{ n }] = await db.sql<[{ n: number }]>`select count(*)::int as n from records where capture_id = ${seed.captureId} and headers->1->>1 = 'once'`;
    expect(n).toBe(1);
    const agent = await db.db.selectFrom("capture_agents").select("stored").where("capture_id", "=", seed.captureId).executeTakeFirstOrThrow();
    expect(Number(agent.stored)).toBe(16); // 5 awkward rows + 2 × 5 with separators + 1
  });

  it("leaves nothing behind when Postgres refuses a row, so the batch can be rejected whole", async () => {
    const batchId = "bad-ip-1";
    const records = [syntheticRecord("ok", 2), { ...syntheticRecord("bad", 3), src: { ip: "not-an-ip", port: 1 } }];
    const err = await storeRecordBatch(db.db, { batchId, ...ids(), ...batchOf(batchId, records) }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe("22P02");
    const [{ n }] = await db.sql<[{ n: number }]>`select count(*)::int as n from ingested_batches where batch_id = ${batchId}`;
    expect(n).toBe(0);
    expect(await storedRowsWithId(db, seed.captureId, "ok")).toBe(0);
  });

  it("reports rows the table's checks refuse as SQLSTATE class 23 and unreadable values as class 22", async () => {
    const store = (batchId: string, record: HttpRecord) => storeRecordBatch(db.db, { batchId, ...ids(), ...batchOf(batchId, [syntheticRecord("ok", 4), record]) }).then(
        () => ({ code: "stored" }),
        (e: { code?: string }) => e,
      );
    expect((await store("bad-kind-1", { ...syntheticRecord("bad", 5), kind: "bogus" as never })).code).toBe("23514");
    expect((await store("bad-time-1", { ...syntheticRecord("bad", 6), ts: "yesterday-ish" })).code).toMatch(/^22/);
    expect((await store("bad-status-1", { ...syntheticRecord("bad", 7), status: 70_000 })).code).toMatch(/^22/);
    expect((await store("bad-nul-1", { ...syntheticRecord("bad", 8), headers: [{ name: "X-Nul", value: "a\u0000b" }] })).code).toMatch(/^22/);
    expect(await storedRowsWithId(db, seed.captureId, "ok")).toBe(0);
  });
});
