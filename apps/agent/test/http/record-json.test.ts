import type { HttpRecord } from "@hdrcap/api/records";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RecordJsonEncoder } from "../../src/capture/record-json.ts";

// Any string, including quotes, backslashes, controls, lone surrogates and astral characters.
const anyText = fc.oneof(
  fc.string({ unit: "grapheme-ascii" }),
  fc.string({ unit: "binary" }),
  fc.constantFrom("", '"', "\\", "\u0000", "\u001f", "\u007f", "\ud800", "a\udc00b", "😀", "é\r\n\t"),
);
const anyNumber = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(Number.NaN, Infinity, -Infinity, -0));
const endpoint = fc.record({ ip: anyText, port: anyNumber });

// Keys in the schema's order, as the decoder builds records.
const anyRecord: fc.Arbitrary<HttpRecord> = fc
  .record({
    ts: anyText,
    connectionId: fc.constantFrom("1", "2", "3"),
    kind: fc.constantFrom("request" as const, "response" as const),
    role: fc.constantFrom("client" as const, "server" as const, "unknown" as const),
    src: endpoint,
    dst: endpoint,
    pid: anyNumber,
    comm: anyText,
    method: fc.option(anyText),
    path: fc.option(anyText),
    version: anyText,
    status: fc.option(anyNumber),
    reason: fc.option(anyText),
    latencyMs: fc.option(anyNumber),
    headers: fc.array(fc.record({ name: anyText, value: anyText }), { maxLength: 6 }),
    headerBytes: anyNumber,
    redacted: fc.array(anyText, { maxLength: 3 }),
  })
  .map((r) => ({ ...r }));

describe("RecordJsonEncoder", () => {
  it("writes exactly what JSON.stringify writes, for any record", () => {
    // One encoder across all runs: its per-connection cache sees the same ids with changing parts.
    const encoder = new RecordJsonEncoder();
    fc.assert(
      fc.property(anyRecord, (r) => {
        expect(encoder.encode(r)).toBe(JSON.stringify(r));
      }),
      { numRuns: 2000 },
    );
  });

  it("re-encodes a connection's parts when they change, and reuses them when they do not", () => {
    const encoder = new RecordJsonEncoder();
    const base = record("7", 40000);
    const variants: HttpRecord[] = [
      base,
      { ...base, kind: "response", status: 200, reason: "OK", method: null, path: null, latencyMs: 1.25 },
      { ...base, src: { ...base.src, port: 40001 } },
      { ...base, dst: { ...base.dst, ip: "10.0.0.3" } },
      { ...base, role: "client" },
      { ...base, comm: "worker" },
      { ...base, pid: 11 },
      base,
    ];
    for (const r of variants) expect(JSON.parse(encoder.encode(r))).toEqual(r);
    for (const r of variants) expect(encoder.encode(r)).toBe(JSON.stringify(r));
  });

  it("keeps working past its connection cache bound", () => {
    const encoder = new RecordJsonEncoder();
    for (let i = 0; i < 10_000; i++) {
      const r = record(String(i), i % 65536);
      expect(encoder.encode(r)).toBe(JSON.stringify(r));
    }
  });
});

function record(connectionId: string, srcPort: number): HttpRecord {
  return {
    ts: "2026-11-25T00:00:00.000Z",
    connectionId,
    kind: "request",
    role: "server",
    src: { ip: "10.0.0.1", port: srcPort },
    dst: { ip: "10.0.0.2", port: 80 },
    pid: 10,
    comm: "nginx",
    method: "GET",
    path: "/",
    version: "HTTP/1.1",
    status: null,
    reason: null,
    latencyMs: null,
    headers: [{ name: "Host", value: "a" }],
    headerBytes: 30,
    redacted: [],
  };
}
