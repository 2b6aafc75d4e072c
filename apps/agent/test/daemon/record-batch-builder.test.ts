import { MAX_BATCH_RECORDS, recordBatchSchema } from "@hdrcap/api/nats";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RecordBatchBuilder, type SealedBatch } from "../../src/messaging/record-batch-builder.ts";
import { fakeRecords } from "./fakes.ts";

const decode = (b: SealedBatch) => recordBatchSchema.parse(JSON.parse(new TextDecoder().decode(b.payload)));
const ids = () => {
  let n = 0;
  return () => `agt_test.nonce.cap.${++n}`;
};

describe("RecordBatchBuilder", () => {
  it("seals a batch exactly at MAX_BATCH_RECORDS and keeps the rest pending", () => {
    const b = new RecordBatchBuilder("cap", ids());
    const sealed = b.add(fakeRecords(0, MAX_BATCH_RECORDS * 2 + 7));
    expect(sealed.map((s) => s.count)).toEqual([MAX_BATCH_RECORDS, MAX_BATCH_RECORDS]);
    expect(b.pending).toBe(7);
    const last = b.flush()!;
    expect(last.count).toBe(7);
    expect(b.flush()).toBeNull();
  });

  it("produces payloads that are valid RecordBatch messages with the batch id and capture id", () => {
    const b = new RecordBatchBuilder("cap_1", ids());
    const [first] = b.add(fakeRecords(0, MAX_BATCH_RECORDS));
    const msg = decode(first!);
    expect(msg).toMatchObject({ v: 1, batchId: first!.batchId, captureId: "cap_1" });
    expect(msg.records.map((r) => r.connectionId)).toEqual(fakeRecords(0, MAX_BATCH_RECORDS).map((r) => r.connectionId));
  });

  it("splits by encoded size so no batch exceeds the byte limit", () => {
    const maxBytes = 16 * 1024;
    const b = new RecordBatchBuilder("cap", ids(), { maxRecords: MAX_BATCH_RECORDS, maxBytes });
    const sealed = [...b.add(fakeRecords(0, 200, 1000)), b.flush()!];
    expect(sealed.length).toBeGreaterThan(10);
    for (const s of sealed) expect(s.payload.byteLength).toBeLessThanOrEqual(maxBytes);
    expect(sealed.reduce((n, s) => n + s.count, 0)).toBe(200);
  });

  it("puts a single record larger than the byte limit alone in its batch", () => {
    const b = new RecordBatchBuilder("cap", ids(), { maxRecords: 10, maxBytes: 2048 });
    const sealed = [...b.add([...fakeRecords(0, 1), ...fakeRecords(1, 1, 4096), ...fakeRecords(2, 1)]), b.flush()!];
    expect(sealed.map((s) => s.count)).toEqual([1, 1, 1]);
  });

  it("keeps every record exactly once and in order, whatever the arrival pattern and limits", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 20 }),
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 300, max: 20_000 }),
        (chunks, maxRecords, maxBytes) => {
          const b = new RecordBatchBuilder("cap", ids(), { maxRecords, maxBytes });
          const sealed: SealedBatch[] = [];
          let n = 0;
          for (const size of chunks) {
            sealed.push(...b.add(fakeRecords(n, size, n % 7 === 0 ? 900 : 10)));
            n += size;
          }
          const last = b.flush();
          if (last) sealed.push(last);
          const seen = sealed.flatMap((s) => decode(s).records.map((r) => r.connectionId));
          expect(seen).toEqual(Array.from({ length: n }, (_, i) => `c-${i}`));
          for (const s of sealed) {
            expect(s.count).toBeLessThanOrEqual(maxRecords);
            if (s.count > 1) expect(s.payload.byteLength).toBeLessThanOrEqual(maxBytes);
          }
          expect(new Set(sealed.map((s) => s.batchId)).size).toBe(sealed.length);
        },
      ),
      { numRuns: 60 },
    );
  });
});
