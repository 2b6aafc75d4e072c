import { recordBatchSchema, type HttpRecord } from "@hdrcap/api";
import { describe, expect, it } from "vitest";
import { checkRecordBatch } from "../src/messaging/record-batch-check.ts";

// The ingester checks batches by hand instead of through zod (no copy of every
// record); these tests hold that check to `recordBatchSchema`: every single-field
// mutation of a valid batch is accepted or refused by both alike.

const request = (): HttpRecord => ({
  ts: "2026-11-25T17:00:00.123Z",
  connectionId: "c1",
  kind: "request",
  role: "server",
  src: { ip: "10.0.0.1", port: 40000 },
  dst: { ip: "10.0.0.2", port: 8080 },
  pid: 42,
  comm: "nginx",
  method: "GET",
  path: "/x",
  version: "HTTP/1.1",
  status: null,
  reason: null,
  latencyMs: null,
  headers: [
    { name: "Host", value: "a" },
    { name: "X-Id", value: "b" },
  ],
  headerBytes: 40,
  redacted: ["Authorization"],
});
const response = (): HttpRecord => ({ ...request(), kind: "response", method: null, path: null, status: 200, reason: "OK", latencyMs: 1.5, redacted: [] });
const batch = () => ({ v: 1, batchId: "agt_1.cap_1.0001", captureId: "cap_1", records: [request(), response()] });

const CANDIDATES: unknown[] = [undefined, null, "", "x", "request", "client", 0, -1, 1, 1.5, 65535, 65536, 70_000, 2 ** 53, Number.MAX_SAFE_INTEGER, true, [], {}, [{}], ["a"], [{ name: "a", value: "b" }]];

/** Every path to a value inside `v` (objects and arrays), root excluded. */
function paths(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (typeof v !== "object" || v === null) return [];
  const keys: (string | number)[] = Array.isArray(v) ? v.map((_, i) => i) : Object.keys(v);
  return keys.flatMap((k) => [[...prefix, k], ...paths((v as Record<string | number, unknown>)[k], [...prefix, k])]);
}

function withValue(root: unknown, path: (string | number)[], value: unknown): unknown {
  const copy = structuredClone(root) as Record<string | number, unknown>;
  let at = copy;
  for (const k of path.slice(0, -1)) at = at[k] as Record<string | number, unknown>;
  const last = path.at(-1)!;
  if (value === undefined && !Array.isArray(at)) delete at[last];
  else at[last] = value;
  return copy;
}

describe("checking a record batch without zod", () => {
  it("accepts a valid batch and hands back the same value, not a copy", () => {
    const b = batch();
    const checked = checkRecordBatch(b);
    expect(checked.ok && checked.batch).toBe(b);
  });

  it("agrees with recordBatchSchema on every single-field mutation of a valid batch", () => {
    let compared = 0;
    for (const path of paths(batch())) {
      if (path.at(-1) === "ts") continue; // stricter on purpose: below
      for (const value of CANDIDATES) {
        const mutated = withValue(batch(), path, value);
        const schema = recordBatchSchema.safeParse(mutated).success;
        const check = checkRecordBatch(mutated);
        expect({ path: path.join("."), value, ok: check.ok }).toEqual({ path: path.join("."), value, ok: schema });
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(1000);
  });

  it("agrees on the envelope's limits: batch id length, capture id length, 1 to 500 records", () => {
    const cases = [
      { ...batch(), batchId: "1234567" },
      { ...batch(), batchId: "x".repeat(200) },
      { ...batch(), batchId: "x".repeat(201) },
      { ...batch(), captureId: "c".repeat(64) },
      { ...batch(), captureId: "c".repeat(65) },
      { ...batch(), records: [] },
      { ...batch(), records: Array.from({ length: 500 }, request) },
      { ...batch(), records: Array.from({ length: 501 }, request) },
      { ...batch(), v: 2 },
      [batch()],
      "batch",
      null,
    ];
    for (const c of cases) expect(checkRecordBatch(c).ok).toBe(recordBatchSchema.safeParse(c).success);
  });

  it("requires ts to be an ISO 8601 UTC time, as agents write it", () => {
    const withTs = (ts: unknown) => checkRecordBatch({ ...batch(), records: [{ ...request(), ts }] });
    for (const ts of ["2026-11-25T17:00:00.123Z", "2026-11-25T17:00:00Z", "2026-11-25T17:00:00.123456Z"]) expect(withTs(ts).ok).toBe(true);
    for (const ts of ["now", "yesterday", "2026-11-25", "2026-11-25 17:00:00", "2026-11-25T17:00:00+01:00", "2026-13-45T99:00:00Z", "", 1732554000000]) {
      expect(withTs(ts)).toEqual({ ok: false, issue: "records.0.ts: expected an ISO 8601 UTC time" });
    }
  });

  it("names the first field that is wrong", () => {
    expect(checkRecordBatch({ ...batch(), records: [request(), { ...response(), src: { ip: "1.2.3.4", port: 70_000 } }] })).toEqual({
      ok: false,
      issue: "records.1.src.port: expected an integer from 0 to 65535",
    });
    expect(checkRecordBatch({ ...batch(), records: [{ ...request(), headers: [{ name: "a" }] }] })).toEqual({ ok: false, issue: "records.0.headers.0: expected { name: string, value: string }" });
  });
});
