import { recordBatchSchema } from "@hdrcap/api/nats";
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { BatchBufferPool } from "../../src/messaging/batch-buffer-pool.ts";
import { RecordBatchBuilder, type SealedBatch } from "../../src/messaging/record-batch-builder.ts";
import { RecordPublisher, type BatchSink } from "../../src/messaging/record-publisher.ts";
import { fakeRecords } from "../daemon/fakes.ts";

const decode = (b: SealedBatch) => recordBatchSchema.parse(JSON.parse(Buffer.from(b.payload).toString("utf8")));
const ids = () => {
  let n = 0;
  return () => `agt_test.cap.nonce.${++n}`;
};
const firstConnection = (b: SealedBatch) => decode(b).records[0]!.connectionId;
const settle = () => new Promise((r) => setTimeout(r, 5));

describe("BatchBufferPool", () => {
  it("hands a released slab out again instead of allocating, and keeps at most maxFree", () => {
    const pool = new BatchBufferPool(1024, 1);
    const a = pool.acquire();
    const b = pool.acquire();
    expect(pool.allocatedCount).toBe(2);
    pool.release(a);
    pool.release(b); // over maxFree: left to the GC
    expect(pool.freeCount).toBe(1);
    expect(pool.acquire()).toBe(a);
    expect(pool.allocatedCount).toBe(2);
  });

  it("refuses a slab released twice or one that is not its own", () => {
    const pool = new BatchBufferPool(1024, 4);
    const a = pool.acquire();
    pool.release(a);
    expect(() => pool.release(a)).toThrow(/twice/);
    expect(() => pool.release(Buffer.alloc(512))).toThrow(/not a slab/);
    expect(() => pool.release(Buffer.alloc(2048).subarray(0, 1024))).toThrow(/not a slab/);
  });
});

describe("RecordBatchBuilder with a shared pool", () => {
  it("builds each full batch in a slab it owns: a later batch never overwrites an earlier one still held", () => {
    const pool = new BatchBufferPool(16 * 1024, 8);
    const builder = new RecordBatchBuilder("cap", ids(), { maxRecords: 500, maxBytes: 16 * 1024 }, undefined, pool);
    const held = builder.add(fakeRecords(0, 400, 40));
    expect(held.length).toBeGreaterThan(5);
    expect(held.every((b) => b.slab !== undefined && b.payload.buffer === b.slab.buffer)).toBe(true);
    expect(new Set(held.map((b) => b.slab)).size).toBe(held.length);
    const sealedBefore = held.reduce((n, b) => n + b.count, 0);
    expect(held.flatMap((b) => decode(b).records.map((r) => r.connectionId))).toEqual(Array.from({ length: sealedBefore }, (_, i) => `c-${i}`));
  });

  it("reuses the slabs of released batches, and their payloads stay valid RecordBatch messages", () => {
    const pool = new BatchBufferPool(16 * 1024, 8);
    const builder = new RecordBatchBuilder("cap", ids(), { maxRecords: 500, maxBytes: 16 * 1024 }, undefined, pool);
    let n = 0;
    for (let round = 0; round < 20; round++) {
      const sealed = builder.add(fakeRecords(n, 100, 40));
      n += 100;
      for (const b of sealed) {
        expect(decode(b)).toMatchObject({ v: 1, batchId: b.batchId, captureId: "cap" });
        if (b.slab) pool.release(b.slab);
      }
    }
    // The batches sealed by one add() plus the one filling: not one per batch.
    expect(pool.allocatedCount).toBeLessThanOrEqual(4);
  });

  it("keeps every record once and in order, and held batches intact, while released slabs are reused", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 80 }), fc.boolean()), { maxLength: 25 }),
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 2_000, max: 20_000 }),
        (steps, maxRecords, maxBytes) => {
          const pool = new BatchBufferPool(maxBytes, 4);
          const b = new RecordBatchBuilder("cap", ids(), { maxRecords, maxBytes }, undefined, pool);
          const seen: string[] = [];
          const kept: { batch: SealedBatch; text: string }[] = [];
          let n = 0;
          for (const [size, release] of steps) {
            const sealed = [...b.add(fakeRecords(n, size, n % 5 === 0 ? 700 : 10)), ...(release ? [b.flush()].filter((x) => x !== null) : [])];
            n += size;
            for (const batch of sealed) {
              seen.push(...decode(batch).records.map((r) => r.connectionId));
              if (release && batch.slab) pool.release(batch.slab);
              else kept.push({ batch, text: Buffer.from(batch.payload).toString("latin1") });
            }
          }
          const last = b.flush();
          if (last) seen.push(...decode(last).records.map((r) => r.connectionId));
          expect(seen).toEqual(Array.from({ length: n }, (_, i) => `c-${i}`));
          for (const { batch, text } of kept) expect(Buffer.from(batch.payload).toString("latin1")).toBe(text);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("copies a small batch out of its slab, and an idle builder gives the slab back", () => {
    const pool = new BatchBufferPool(64 * 1024, 8);
    const builder = new RecordBatchBuilder("cap", ids(), { maxRecords: 500, maxBytes: 64 * 1024 }, undefined, pool);
    expect(builder.add(fakeRecords(0, 3))).toEqual([]);
    const batch = builder.flush()!;
    expect(batch.slab).toBeUndefined();
    expect(batch.payload.buffer.byteLength).toBe(batch.payload.length);
    expect(decode(batch).records).toHaveLength(3);
    expect(pool.freeCount).toBe(1);
    expect(builder.pending).toBe(0);
  });

  it("assembles a batch whose id is longer than reserved in a buffer of its own", () => {
    const pool = new BatchBufferPool(16 * 1024, 8);
    const builder = new RecordBatchBuilder("cap", () => `agt_${"x".repeat(60)}`, { maxRecords: 10, maxBytes: 16 * 1024 }, 20, pool);
    const [batch] = builder.add(fakeRecords(0, 10, 400));
    expect(batch!.slab).toBeUndefined();
    expect(decode(batch!).batchId).toBe(`agt_${"x".repeat(60)}`);
    expect(decode(batch!).records).toHaveLength(10);
  });
});

describe("RecordPublisher buffer reuse", () => {
  /** Acks after a few publishes more, and checks each payload is still its batch's at ack time (when NATS has it). */
  function checkingSink(holdAcks: number) {
    const held: { batch: SealedBatch; first: string; resolve: () => void }[] = [];
    const corrupt: string[] = [];
    let failFirstOf: string | null = null;
    const failed = new Set<string>();
    const sink: BatchSink = {
      isReady: () => true,
      publish(batch) {
        const first = firstConnection(batch);
        if (failFirstOf !== null && firstConnection(batch) === failFirstOf && !failed.has(batch.batchId)) {
          failed.add(batch.batchId);
          return Promise.reject(new Error("timeout"));
        }
        return new Promise((resolve) => {
          held.push({ batch, first, resolve });
          while (held.length > holdAcks) {
            const h = held.shift()!;
            const msg = decode(h.batch);
            if (msg.batchId !== h.batch.batchId || msg.records[0]!.connectionId !== h.first) corrupt.push(h.batch.batchId);
            h.resolve();
          }
        });
      },
    };
    return {
      sink,
      corrupt,
      failFirstPublishOf: (connectionId: string) => (failFirstOf = connectionId),
      releaseAll: () => {
        for (const h of held.splice(0)) {
          const msg = decode(h.batch);
          if (msg.batchId !== h.batch.batchId || msg.records[0]!.connectionId !== h.first) corrupt.push(h.batch.batchId);
          h.resolve();
        }
      },
    };
  }

  it("publishes many batches through a few reused slabs, none overwritten before its ack", async () => {
    const s = checkingSink(3);
    const p = new RecordPublisher({ sink: s.sink, batchIdPrefix: "agt_x", limits: { maxRecords: 50, maxBytes: 32 * 1024 }, maxQueuedBytes: 16 * 32 * 1024, maxInFlight: 4 });
    for (let k = 0; k < 40; k++) {
      p.add("cap", fakeRecords(k * 100, 100, 100));
      await settle();
    }
    s.releaseAll();
    await settle();
    s.releaseAll();
    expect(await p.waitIdle(2_000)).toBe(true);
    expect(p.counters("cap")).toEqual({ added: 4000, published: 4000, dropped: 0 });
    expect(s.corrupt).toEqual([]);
    // 80 full batches; without reuse each would have allocated a slab.
    expect(p.bufferPool.allocatedCount).toBeLessThanOrEqual(16 + 2);
  });

  it("keeps a failed batch's slab until its retry is acknowledged, while later batches reuse theirs", async () => {
    const s = checkingSink(0);
    const p = new RecordPublisher({ sink: s.sink, batchIdPrefix: "agt_x", limits: { maxRecords: 50, maxBytes: 32 * 1024 }, maxInFlight: 4, retryMinMs: 20 });
    s.failFirstPublishOf("c-0");
    p.add("cap", fakeRecords(0, 200, 100));
    await settle();
    for (let k = 2; k < 10; k++) {
      p.add("cap", fakeRecords(k * 100, 100, 100));
      await settle();
    }
    expect(await p.waitIdle(2_000)).toBe(true);
    expect(p.counters("cap")).toEqual({ added: 1000, published: 1000, dropped: 0 });
    expect(s.corrupt).toEqual([]);
  });

  it("lets its spare slabs go once it has been idle for a while", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      const sink: BatchSink = { isReady: () => true, publish: () => Promise.resolve() };
      const p = new RecordPublisher({ sink, batchIdPrefix: "agt_x", limits: { maxRecords: 50, maxBytes: 32 * 1024 } });
      p.add("cap", fakeRecords(0, 500, 100));
      await vi.advanceTimersByTimeAsync(50);
      expect(p.heldRecords).toBe(0);
      expect(p.bufferPool.freeCount).toBeGreaterThan(0);
      await vi.advanceTimersByTimeAsync(10_000);
      expect(p.bufferPool.freeCount).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
