import { freshDatabase, type TestDatabase } from "@hdrcap/testkit";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { headerTerms, migrateDown, migrateToLatest } from "../src/index.ts";

// The header-terms migration replaces header_names and the generated header_pairs on rows already stored,
// and its down restores both from the headers.
const HEADERS: [string, string][] = [["Host", "a"], ["X-Tenant", "t=1"], ["x-tenant", "t2"], ["X-Eq=Name", "v"], ["X-Quote\"", "\\"]];

const HEADER_TERMS = "2026-11-25T21-00-00_record-header-terms";

/** Undoes migrations down to and including the header-terms one (later migrations come off first). */
async function migrateDownThroughHeaderTerms(db: TestDatabase["db"]): Promise<string[]> {
  const undone: string[] = [];
  while (!undone.includes(HEADER_TERMS)) {
    const names = await migrateDown(db);
    if (names.length === 0) break;
    undone.push(...names);
  }
  return undone;
}

describe("the header-terms migration", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await freshDatabase(inject("pgAdminUrl"));
    expect((await migrateDownThroughHeaderTerms(t.db)).at(-1)).toBe(HEADER_TERMS);
    // a row as the writers before it stored one
    await sql`insert into records (ts, tenant_id, capture_id, agent_id, connection_id, kind, direction, role, src_ip, src_port, dst_ip, dst_port,
                                   pid, comm, method, path, version, status, latency_ms, headers, header_names, header_bytes)
              values (now(), 'ten_x', 'cap_x', 'agt_x', '1', 'request', 'ingress', 'server', '10.0.0.1', 5000, '10.0.0.2', 80,
                      1, 'nginx', 'GET', '/', 'HTTP/1.1', null, null, ${JSON.stringify(HEADERS)}::text::jsonb,
                      ${'{host,x-tenant,x-eq=name,"x-quote\\""}'}::text::text[], 30)`.execute(t.db);
  });
  afterAll(async () => t?.drop());

  it("fills header_terms of stored rows as the writers do (no terms for a name holding '=')", async () => {
    await migrateToLatest(t.db);
    const { rows } = await sql<{ header_terms: string[] }>`select header_terms from records`.execute(t.db);
    const terms = headerTerms(HEADERS.map(([name, value]) => ({ name, value })));
    expect(terms).toEqual(["host", "host=a", "x-tenant", "x-tenant=t=1", "x-tenant=t2", 'x-quote"', 'x-quote"=\\']);
    expect([...rows[0]!.header_terms].sort()).toEqual([...terms].sort());
  });

  it("restores header_names and header_pairs on the way down", async () => {
    await migrateDownThroughHeaderTerms(t.db);
    const { rows } = await sql<{ header_names: string[]; header_pairs: string[] }>`select header_names, header_pairs from records`.execute(t.db);
    expect(rows[0]).toEqual({
      header_names: ["host", "x-tenant", "x-eq=name", 'x-quote"'],
      header_pairs: ["host=a", "x-tenant=t=1", "x-tenant=t2", "x-eq=name=v", 'x-quote"=\\'],
    });
    await migrateToLatest(t.db);
  });
});
