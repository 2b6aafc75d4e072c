import type { HttpRecord } from "@hdrcap/api";
import { storeRecordBatch } from "@hdrcap/db";
import { freshDatabase, type TestDatabase } from "@hdrcap/testkit";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { recordRow } from "../src/messaging/ingester.ts";
import { seedCapture, syntheticRecord, type SeededCapture } from "./ingest-harness.ts";

const storedRowsWithId = async (db: TestDatabase, captureId: string, recordId: string) =>
  (await db.sql<[{ n: number }]>`select count(*)::int as n from records where capture_id = ${captureId} and headers->1->>1 = ${recordId}`)[0].n;

// storeRecordBatch writes a batch in one statement (unnest over column arrays).
// Rows must come back byte for byte whatever the header values hold, a batch id
// is claimed once, and a row Postgres refuses leaves nothing behind.

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
    { name: "x-tab", value: "dup" },
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
      await db.sql`select path, comm, headers, header_names, src_ip::text as src_ip, status, latency_ms, method
                   from records where capture_id = ${seed.captureId} and comm = ${awkward().comm} and connection_id = ${batchId} order by id`
    ).map((r) => ({ ...r }));

  it("keeps awkward header values intact", async () => {
    const batchId = "awkward-1";
    const rows = [awkward(), { ...awkward(), kind: "response" as const, method: null, path: null, status: 503, latencyMs: 12.25, headers: [] }].map((r) => ({
      ...recordRow(r, ids()),
      connection_id: batchId,
    }));
    const outcome = await storeRecordBatch(db.db, { batchId, ...ids(), rows });
    expect(outcome).toBe("stored");
    const stored = await readBack(batchId);
    expect(stored).toEqual(
      rows.map((r) => ({
        path: r.path,
        comm: r.comm,
        headers: r.headers,
        header_names: r.header_names,
        src_ip: "10.1.0.7/32",
        status: r.status,
        latency_ms: r.latency_ms,
        method: r.method,
      })),
    );
    expect(stored[0]!.header_names).toEqual(["x-tab", "x-backslash", "x-newline", "x-unicode", "x-json", 'x-quote"name']);
    expect(stored[1]!.headers).toEqual([]);
  });

  it("claims a batch id once and refuses captures not assigned to the agent", async () => {
    const rows = [recordRow(syntheticRecord("once", 1), ids())];
    const batchId = "once-1";
    expect(await storeRecordBatch(db.db, { batchId, ...ids(), rows })).toBe("stored");
    expect(await storeRecordBatch(db.db, { batchId, ...ids(), rows })).toBe("duplicate");
    expect(await storeRecordBatch(db.db, { batchId: `${batchId}-x`, ...ids(), tenantId: "ten_other", rows })).toBe("unknown-capture");
    const [{ n }] = await db.sql<[{ n: number }]>`select count(*)::int as n from records where capture_id = ${seed.captureId} and headers->1->>1 = 'once'`;
    expect(n).toBe(1);
    const agent = await db.db.selectFrom("capture_agents").select("stored").where("capture_id", "=", seed.captureId).executeTakeFirstOrThrow();
    expect(Number(agent.stored)).toBe(3); // 2 awkward rows + 1
  });

  it("leaves nothing behind when Postgres refuses a row, so the batch can be rejected whole", async () => {
    const batchId = "bad-ip-1";
    const rows = [recordRow(syntheticRecord("ok", 2), ids()), { ...recordRow(syntheticRecord("bad", 3), ids()), src_ip: "not-an-ip" }];
    const err = await storeRecordBatch(db.db, { batchId, ...ids(), rows }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe("22P02");
    const [{ n }] = await db.sql<[{ n: number }]>`select count(*)::int as n from ingested_batches where batch_id = ${batchId}`;
    expect(n).toBe(0);
    expect(await storedRowsWithId(db, seed.captureId, "ok")).toBe(0);
  });
});
