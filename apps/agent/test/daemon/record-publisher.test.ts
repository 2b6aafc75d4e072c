import { describe, expect, it } from "vitest";
import type { SealedBatch } from "../../src/messaging/record-batch-builder.ts";
import { RecordPublisher, type BatchSink } from "../../src/messaging/record-publisher.ts";
import { fakeRecords } from "./fakes.ts";

/** A sink the test controls: acks, failures, readiness; remembers every attempt. */
function controllableSink() {
  const pending: { batch: SealedBatch; resolve: () => void; reject: (e: Error) => void }[] = [];
  const attempts: string[] = [];
  const stored = new Map<string, number>();
  let ready = true;
  let autoAck = false;
  const sink: BatchSink = {
    isReady: () => ready,
    publish(batch) {
      attempts.push(batch.batchId);
      if (autoAck) {
        stored.set(batch.batchId, batch.count);
        return Promise.resolve();
      }
      return new Promise((resolve, reject) =>
        pending.push({
          batch,
          resolve: () => {
            stored.set(batch.batchId, batch.count);
            resolve();
          },
          reject,
        }),
      );
    },
  };
  return {
    sink,
    pending,
    attempts,
    stored,
    setReady: (v: boolean) => (ready = v),
    setAutoAck: (v: boolean) => (autoAck = v),
    storedRecords: () => [...stored.values()].reduce((a, b) => a + b, 0),
  };
}

const settle = () => new Promise((r) => setTimeout(r, 5));

describe("RecordPublisher", () => {
  it("publishes full batches at once and flushes a partial batch after the flush delay", async () => {
    const s = controllableSink();
    s.setAutoAck(true);
    const p = new RecordPublisher({ sink: s.sink, batchIdPrefix: "agt_x", flushDelayMs: 20 });
    p.add("cap", fakeRecords(0, 1203));
    await settle();
    expect(s.storedRecords()).toBe(1000);
    await new Promise((r) => setTimeout(r, 40));
    expect(s.storedRecords()).toBe(1203);
    expect(p.counters("cap")).toEqual({ added: 1203, published: 1203, dropped: 0 });
    expect(p.heldRecords).toBe(0);
  });

  it("keeps at most maxInFlight publishes outstanding", async () => {
    const s = controllableSink();
    const p = new RecordPublisher({ sink: s.sink, batchIdPrefix: "agt_x", maxInFlight: 3, limits: { maxRecords: 10, maxBytes: 1 << 20 } });
    p.add("cap", fakeRecords(0, 100));
    await settle();
    expect(s.pending).toHaveLength(3);
    s.pending.shift()!.resolve();
    await settle();
    expect(s.pending).toHaveLength(3);
    expect(p.pendingBatches).toBe(9);
  });

  it("counts exactly what overflows the queue bound as dropped, per capture", async () => {
    const s = controllableSink();
    s.setReady(false);
    const dropped: [string, number][] = [];
    const p = new RecordPublisher({
      sink: s.sink,
      batchIdPrefix: "agt_x",
      maxQueuedRecords: 1000,
      observer: { recordsDropped: (id, n) => dropped.push([id, n]) },
    });
    p.add("a", fakeRecords(0, 700));
    p.add("b", fakeRecords(700, 500));
    p.add("a", fakeRecords(1200, 10));
    expect(p.counters("a")).toEqual({ added: 710, published: 0, dropped: 10 });
    expect(p.counters("b")).toEqual({ added: 500, published: 0, dropped: 200 });
    expect(p.heldRecords).toBe(1000);
    expect(dropped).toEqual([
      ["b", 200],
      ["a", 10],
    ]);
    s.setAutoAck(true);
    s.setReady(true);
    p.kick();
    expect(await p.waitIdle(2000)).toBe(true);
    expect(s.storedRecords()).toBe(1000);
    expect(p.counters("a").published + p.counters("b").published).toBe(1000);
    // Room again once published.
    p.add("b", fakeRecords(2000, 5));
    expect(p.counters("b").dropped).toBe(200);
  });

  it("retries a failed batch with the same id before batches sealed after it", async () => {
    const s = controllableSink();
    const p = new RecordPublisher({ sink: s.sink, batchIdPrefix: "agt_x", maxInFlight: 1, retryMinMs: 10, limits: { maxRecords: 10, maxBytes: 1 << 20 } });
    p.add("cap", fakeRecords(0, 30));
    await settle();
    const first = s.pending.shift()!;
    first.reject(new Error("timeout"));
    await new Promise((r) => setTimeout(r, 30));
    expect(s.attempts[0]).toBe(first.batch.batchId);
    expect(s.attempts[1]).toBe(first.batch.batchId);
    s.setAutoAck(true);
    s.pending.shift()!.resolve();
    expect(await p.waitIdle(2000)).toBe(true);
    expect(s.attempts.slice(1)).toEqual([...new Set(s.attempts)]);
    expect(p.counters("cap")).toEqual({ added: 30, published: 30, dropped: 0 });
  });

  it("on close, counts records still unacknowledged after the timeout as dropped and refuses new ones", async () => {
    const s = controllableSink();
    s.setReady(false);
    const p = new RecordPublisher({ sink: s.sink, batchIdPrefix: "agt_x" });
    p.add("cap", fakeRecords(0, 42));
    expect(await p.close(30)).toBe(42);
    p.add("cap", fakeRecords(42, 3));
    expect(p.counters("cap")).toEqual({ added: 45, published: 0, dropped: 45 });
    expect(p.heldRecords).toBe(0);
  });

  it("on close, flushes partial batches and waits for their acks", async () => {
    const s = controllableSink();
    s.setAutoAck(true);
    const p = new RecordPublisher({ sink: s.sink, batchIdPrefix: "agt_x", flushDelayMs: 10_000 });
    p.add("cap", fakeRecords(0, 17));
    expect(await p.close(1000)).toBe(0);
    expect(p.counters("cap")).toEqual({ added: 17, published: 17, dropped: 0 });
  });

  it("gives batch ids of the form <prefix>.<capture>.<run nonce>.<seq>, unique per publisher run", async () => {
    const s = controllableSink();
    s.setAutoAck(true);
    const p1 = new RecordPublisher({ sink: s.sink, batchIdPrefix: "agt_x" });
    const p2 = new RecordPublisher({ sink: s.sink, batchIdPrefix: "agt_x" });
    p1.add("cap", fakeRecords(0, 1));
    p2.add("cap", fakeRecords(0, 1));
    await p1.close(1000);
    await p2.close(1000);
    expect(s.attempts).toHaveLength(2);
    for (const id of s.attempts) expect(id).toMatch(/^agt_x\.cap\.[0-9a-f]{12}\.1$/);
    expect(s.attempts[0]).not.toBe(s.attempts[1]);
  });
});
