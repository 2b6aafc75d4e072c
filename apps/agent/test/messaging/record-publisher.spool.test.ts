import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BatchBufferPool } from "../../src/messaging/batch-buffer-pool.ts";
import { BatchSpool } from "../../src/messaging/batch-spool.ts";
import type { SealedBatch } from "../../src/messaging/record-batch-builder.ts";
import { RecordPublisher, type BatchSink, type DropReason, type RecordPublisherOptions } from "../../src/messaging/record-publisher.ts";
import { fakeRecords } from "../daemon/fakes.ts";

/** A sink that is down until told otherwise, then acks everything (or holds acks for the test to release). */
function sinkDownThenUp() {
  const attempts: SealedBatch[] = [];
  const stored = new Map<string, number>();
  const held: (() => void)[] = [];
  let ready = false;
  let holdAcks = false;
  const sink: BatchSink = {
    isReady: () => ready,
    publish(batch) {
      attempts.push(batch);
      const ack = () => void stored.set(batch.batchId, batch.count);
      if (!holdAcks) {
        ack();
        return Promise.resolve();
      }
      return new Promise((resolve) => held.push(() => (ack(), resolve())));
    },
  };
  return {
    sink,
    attempts,
    stored,
    held,
    up: (hold = false) => {
      holdAcks = hold;
      ready = true;
    },
    storedRecords: () => [...stored.values()].reduce((a, b) => a + b, 0),
  };
}

const segments = (dir: string) => readdirSync(dir).filter((n) => n.endsWith(".seg")).sort();
const seqOf = (batchId: string) => Number(batchId.split(".").pop());
const settle = () => new Promise((r) => setTimeout(r, 5));

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "hdrcap-spool-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function publisher(sink: BatchSink, overrides: Partial<RecordPublisherOptions> = {}, drops: [string, number, DropReason][] = []) {
  return new RecordPublisher({
    sink,
    batchIdPrefix: "agt_x",
    limits: { maxRecords: 10, maxBytes: 1 << 20 },
    maxQueuedBytes: 1, // one sealed batch in memory, the rest spills
    spool: { dir, segmentBytes: 4_000 },
    retryMinMs: 5,
    observer: { recordsDropped: (id, n, why) => drops.push([id, n, why]) },
    ...overrides,
  });
}

describe("RecordPublisher with a disk spool", () => {
  it("spills sealed batches over the memory bound to disk and publishes everything in seal order once the sink is up", async () => {
    const s = sinkDownThenUp();
    const p = publisher(s.sink);
    for (let k = 0; k < 10; k++) {
      p.add("a", fakeRecords(k * 20, 10));
      p.add("b", fakeRecords(k * 20 + 10, 10));
    }
    await settle();
    expect(p.pendingBatches).toBe(1); // the memory bound holds one batch
    expect(p.heldBytes).toBeGreaterThan(0);
    expect(p.spoolStats.spooledBatches).toBe(19);
    expect(p.spoolStats.spooledRecords).toBe(190);
    expect(segments(dir).length).toBeGreaterThan(1);
    expect(p.heldRecords).toBe(200);

    s.up();
    p.kick();
    expect(await p.waitIdle(2_000)).toBe(true);
    const seqs = s.attempts.map((b) => seqOf(b.batchId));
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(new Set(seqs).size).toBe(20);
    expect(p.counters("a")).toEqual({ added: 100, published: 100, dropped: 0 });
    expect(p.counters("b")).toEqual({ added: 100, published: 100, dropped: 0 });
    expect(segments(dir)).toEqual([]);
    expect(p.spoolBytes).toBe(0);
  });

  it("sends batches sealed while older ones wait on disk after them, not before", async () => {
    const s = sinkDownThenUp();
    const p = publisher(s.sink, { maxQueuedBytes: 16 << 20, maxQueuedRecords: 30 });
    p.add("a", fakeRecords(0, 50)); // 3 batches in memory, 2 spilled
    s.up(true);
    p.kick();
    p.add("a", fakeRecords(50, 10)); // memory has room again once acked, but older batches are still spooled
    for (let i = 0; i < 50 && s.stored.size < 6; i++) {
      s.held.splice(0).forEach((ack) => ack());
      await settle();
    }
    expect(await p.waitIdle(2_000)).toBe(true);
    const seqs = s.attempts.map((b) => seqOf(b.batchId));
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6]);
    expect(s.storedRecords()).toBe(60);
  });

  it("deletes a segment only once it was read to its end and every batch read from it was acknowledged", async () => {
    const batch = (n: number): SealedBatch => ({ batchId: `b${n}`, captureId: "c", count: 1, payload: Buffer.from(`{"n":${n}}`) });
    // Frames are 26 bytes: a segment is closed at its third, so two batches per segment.
    const spool2Dir = join(dir, "two");
    const two = new BatchSpool({ dir: spool2Dir, segmentBytes: 50 });
    for (let n = 0; n < 4; n++) two.append(batch(n));
    expect(segments(spool2Dir)).toHaveLength(2);
    const first = two.readNext()!;
    expect(first.batches.map((b) => b.batchId)).toEqual(["b0"]);
    two.acked(first.segment);
    expect(segments(spool2Dir)).toHaveLength(2); // b1 is not read yet
    const second = two.readNext()!;
    expect(second.segment).toBe(first.segment);
    expect(second.batches.map((b) => b.batchId)).toEqual(["b1"]);
    expect(segments(spool2Dir)).toHaveLength(2);
    two.acked(second.segment);
    expect(segments(spool2Dir)).toHaveLength(1);
    expect([two.readNext()!, two.readNext()!].flatMap((r) => r.batches.map((b) => b.batchId))).toEqual(["b2", "b3"]);
    expect(two.readNext()).toBeNull();
    two.close();
  });

  it("reads a batch back into a pooled slab, its payload a view of it, never a whole segment", () => {
    const pool = new BatchBufferPool(1024, 4);
    const spool = new BatchSpool({ dir, pool });
    const big = Buffer.alloc(2000, 0x61); // larger than a slab: a buffer of its own
    spool.append({ batchId: "b0", captureId: "c", count: 1, payload: Buffer.from('{"n":0}') });
    spool.append({ batchId: "b1", captureId: "c", count: 1, payload: big });
    const [r0, r1] = [spool.readNext()!, spool.readNext()!];
    const b0 = r0.batches[0]!;
    expect(b0.slab).toBeDefined();
    expect(b0.slab!.length).toBe(1024);
    expect(b0.payload.buffer).toBe(b0.slab!.buffer);
    expect(Buffer.from(b0.payload).toString()).toBe('{"n":0}');
    const b1 = r1.batches[0]!;
    expect(b1.slab).toBeUndefined();
    expect(Buffer.from(b1.payload).equals(big)).toBe(true);
    expect(b1.payload.buffer.byteLength).toBeLessThan(2100);
    expect(pool.allocatedCount).toBe(1);
    pool.release(b0.slab!);
    spool.acked(r0.segment);
    spool.acked(r1.segment);
    expect(spool.readNext()).toBeNull();
    expect(segments(dir)).toEqual([]);
  });

  it("keeps the unread rest of a segment being read back, after the batches held in memory, across a restart", async () => {
    const s = sinkDownThenUp();
    const first = publisher(s.sink, { spool: { dir, segmentBytes: 1 << 20 }, maxInFlight: 2 });
    first.add("a", fakeRecords(0, 100)); // 1 batch in memory, 9 in one segment
    s.up(true); // sends but never acks: the first run reads back only what it can have in flight
    first.kick();
    await settle();
    expect(s.attempts.map((b) => seqOf(b.batchId))).toEqual([1, 2]);
    expect(await first.close(20)).toBe(0);
    expect(first.recordsKeptInSpool).toBe(100);

    const up = sinkDownThenUp();
    up.up();
    const second = publisher(up.sink);
    second.kick();
    expect(await second.waitIdle(2_000)).toBe(true);
    expect(up.attempts.map((b) => seqOf(b.batchId))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(up.storedRecords()).toBe(100);
    expect(segments(dir)).toEqual([]);
    await second.close(100);
  });

  it("replays what a stopped publisher left in the spool, with the same batch ids, when a new one starts on the directory", async () => {
    const down = sinkDownThenUp();
    const first = publisher(down.sink);
    first.add("a", fakeRecords(0, 95));
    expect(await first.close(20)).toBe(0);
    expect(first.recordsKeptInSpool).toBe(95);
    expect(first.counters("a")).toEqual({ added: 95, published: 0, dropped: 0 });
    const sealedIds = [...new Set(down.attempts.map((b) => b.batchId))];
    expect(sealedIds).toEqual([]);

    const up = sinkDownThenUp();
    up.up();
    const replayed: string[] = [];
    const second = publisher(up.sink, { observer: { batchReplayed: (b) => replayed.push(b.batchId) } });
    second.kick();
    expect(await second.waitIdle(2_000)).toBe(true);
    expect(up.storedRecords()).toBe(95);
    expect(up.stored.size).toBe(10);
    expect(replayed).toHaveLength(10);
    const seqs = up.attempts.map((b) => seqOf(b.batchId));
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(up.attempts.every((b) => b.batchId.startsWith("agt_x.a."))).toBe(true);
    expect(second.counters("a").published).toBe(95);
    expect(second.spoolStats.replayedRecords).toBe(95);
    expect(segments(dir)).toEqual([]);
    await second.close(100);
  });

  it("skips and counts a torn frame at the end of a segment (a crash mid-write) instead of misparsing it", async () => {
    const down = sinkDownThenUp();
    const first = publisher(down.sink, { spool: { dir, segmentBytes: 1 << 20 } });
    first.add("a", fakeRecords(0, 50)); // 1 batch in memory, 4 spooled in one segment
    await first.close(20); // the memory batch goes to a front segment
    const [, spilled] = segments(dir);
    const path = join(dir, spilled!);
    truncateSync(path, statSync(path).size - 7);

    const up = sinkDownThenUp();
    up.up();
    const corrupt: number[] = [];
    const second = publisher(up.sink, { observer: { spoolCorrupt: (frames) => corrupt.push(frames) } });
    second.kick();
    expect(await second.waitIdle(2_000)).toBe(true);
    expect(up.storedRecords()).toBe(40);
    expect(corrupt).toEqual([1]);
    expect(second.spoolStats.corruptFrames).toBe(1);
    expect(segments(dir)).toEqual([]);
    await second.close(100);
  });

  it("stops at a frame whose checksum does not match", () => {
    const writer = new BatchSpool({ dir });
    for (let n = 0; n < 3; n++) writer.append({ batchId: `b${n}`, captureId: "c", count: 1, payload: Buffer.from(`{"n":${n}}`) });
    writer.close();
    const [name] = segments(dir);
    const data = readFileSync(join(dir, name!));
    const frame = data.length / 3;
    data.writeUInt8(data.readUInt8(frame + 12) ^ 0xff, frame + 12); // inside the second frame's body
    writeFileSync(join(dir, name!), data);
    const spool = new BatchSpool({ dir });
    const read = spool.readNext()!;
    expect(read.batches.map((b) => b.batchId)).toEqual(["b0"]);
    expect(read.corruptFrames).toBe(0);
    const bad = spool.readNext()!;
    expect(bad.batches).toEqual([]);
    expect(bad.corruptFrames).toBe(1);
    expect(bad.corruptBytes).toBe(2 * frame);
    expect(spool.readNext()).toBeNull();
  });

  it("drops and counts as spool-error what the spool's file system refuses, and keeps going", async () => {
    const s = sinkDownThenUp();
    const drops: [string, number, DropReason][] = [];
    const p = publisher(s.sink, {}, drops);
    rmSync(dir, { recursive: true, force: true }); // the spool directory is gone: opening a segment fails
    p.add("a", fakeRecords(0, 30));
    expect(drops).toEqual([
      ["a", 10, "spool-error"],
      ["a", 10, "spool-error"],
    ]);
    s.up();
    p.kick();
    expect(await p.waitIdle(2_000)).toBe(true);
    expect(p.counters("a")).toEqual({ added: 30, published: 10, dropped: 20 });
  });

  it("drops and counts as spool-full what fits neither memory nor the spool's size bound", async () => {
    const s = sinkDownThenUp();
    const drops: [string, number, DropReason][] = [];
    const p = publisher(s.sink, { spool: { dir, maxBytes: 3_000 } }, drops);
    p.add("a", fakeRecords(0, 200));
    await settle();
    const dropped = p.counters("a").dropped;
    expect(dropped).toBeGreaterThan(0);
    expect(drops.every(([id, , why]) => id === "a" && why === "spool-full")).toBe(true);
    expect(drops.reduce((n, [, c]) => n + c, 0)).toBe(dropped);
    expect(p.spoolBytes).toBeLessThanOrEqual(3_000);
    s.up();
    p.kick();
    expect(await p.waitIdle(2_000)).toBe(true);
    expect(p.counters("a")).toEqual({ added: 200, published: 200 - dropped, dropped });
    expect(s.storedRecords()).toBe(200 - dropped);
  });
});
