import { freshDatabase, type TestDatabase } from "@hdrcap/testkit";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { dropRecordPartitionsBefore, ensureRecordPartitions, listRecordPartitions, partitionName } from "../src/index.ts";

const row = (ts: Date) => ({
  ts,
  tenant_id: "ten_x",
  capture_id: "cap_x",
  agent_id: "agt_x",
  connection_id: "1",
  kind: "request" as const,
  direction: "ingress" as const,
  role: "server" as const,
  src_ip: "10.0.0.1",
  src_port: 5000,
  dst_ip: "::1",
  dst_port: 80,
  pid: 1,
  comm: "nginx",
  method: "GET",
  path: "/",
  version: "HTTP/1.1",
  status: null,
  latency_ms: null,
  headers: [["Host", "a"]],
  header_terms: ["host", "host=a"],
  header_bytes: 30,
});

describe("records partitions", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await freshDatabase(inject("pgAdminUrl"));
  });
  afterAll(async () => t.drop());

  it("creates one partition per UTC day and routes rows into it", async () => {
    const day = new Date("2026-03-10T12:00:00Z");
    const created = await ensureRecordPartitions(t.db, day, 3);
    expect(created).toEqual(["records_p20260310", "records_p20260311", "records_p20260312"]);
    expect(await ensureRecordPartitions(t.db, day, 3)).toEqual([]);

    await t.db.insertInto("records").values([row(new Date("2026-03-11T23:59:59Z")), row(new Date("2026-03-12T00:00:00Z"))]).execute();
    const { rows } = await sql<{ part: string; n: string }>`select tableoid::regclass::text as part, count(*) as n from records group by 1 order by 1`.execute(t.db);
    expect(rows).toEqual([
      { part: "records_p20260311", n: "1" },
      { part: "records_p20260312", n: "1" },
    ]);
  });

  it("keeps rows outside the pre-created range in the default partition instead of failing", async () => {
    await t.db.insertInto("records").values(row(new Date("2031-01-01T00:00:00Z"))).execute();
    const { rows } = await sql<{ n: string }>`select count(*) as n from records_default`.execute(t.db);
    expect(rows[0]?.n).toBe("1");
  });

  it("drops whole days before the retention cutoff and nothing else", async () => {
    const dropped = await dropRecordPartitionsBefore(t.db, new Date("2026-03-12T08:00:00Z"));
    expect(dropped).toEqual(["records_p20260310", "records_p20260311"]);
    expect(await listRecordPartitions(t.db)).toEqual(["records_p20260312"]);
    const remaining = await t.db.selectFrom("records").select("ts").orderBy("ts").execute();
    expect(remaining.map((r) => r.ts.toISOString())).toEqual(["2026-03-12T00:00:00.000Z", "2031-01-01T00:00:00.000Z"]);
  });

  it("names partitions by UTC day", () => {
    expect(partitionName(new Date("2026-12-31T23:30:00-05:00"))).toBe("records_p20270101");
  });
});
