/**
 * Decoding of the ring-buffer drain output into chunks (socket source):
 * every field round-trips, per-connection values are reused only while the
 * record's bytes still say the same thing, and close notices (records of
 * length 0) come out as connection ids, not chunks.
 */
import { describe, expect, it } from "vitest";
import type { CapturedChunk } from "../../src/capture/chunk.ts";
import { ChunkEventDecoder, decodeDrainedRecords } from "../../src/capture/socket/decode-chunk-event.ts";
import { encodeDrainBuffer, syntheticServerTraffic } from "./synthetic-traffic.ts";

const WALL_OFFSET_NS = 1_700_000_000_000_000_000n;

function firstBatch(exchanges: number): CapturedChunk[] {
  return syntheticServerTraffic(exchanges, { concurrent: 4, requestsPerConnection: 3, chunksPerBatch: 1_000_000 }).next()
    .value as CapturedChunk[];
}

describe("drain decoding", () => {
  it("decodes every field of every record as it was written", () => {
    const chunks = firstBatch(20);
    const out: CapturedChunk[] = [];
    const stats = new ChunkEventDecoder().decodeDrained(encodeDrainBuffer(chunks, WALL_OFFSET_NS), Infinity, WALL_OFFSET_NS, out);
    expect(stats).toEqual({ records: chunks.length, closeNotices: 0, malformed: 0 });
    expect(out).toEqual(chunks);
  });

  it("does not reuse a connection's endpoints when a record with the same id carries other ones", () => {
    const [a, b] = firstBatch(1) as [CapturedChunk, CapturedChunk];
    const moved: CapturedChunk = { ...b, remote: { ip: "127.0.0.2", port: 4242 }, local: { ip: "10.1.2.3", port: 80 } };
    const out: CapturedChunk[] = [];
    new ChunkEventDecoder().decodeDrained(encodeDrainBuffer([a, moved], WALL_OFFSET_NS), Infinity, WALL_OFFSET_NS, out);
    expect(out[0]!.remote).toEqual(a.remote);
    expect(out[1]!.remote).toEqual({ ip: "127.0.0.2", port: 4242 });
    expect(out[1]!.local).toEqual({ ip: "10.1.2.3", port: 80 });
  });

  it("copies chunk data out of the drain buffer", () => {
    const chunks = firstBatch(1);
    const buf = encodeDrainBuffer(chunks, WALL_OFFSET_NS);
    const out: CapturedChunk[] = [];
    decodeDrainedRecords(buf, buf.length, WALL_OFFSET_NS, out);
    buf.fill(0);
    expect(out[0]!.data).toEqual(chunks[0]!.data);
  });

  it("reports close notices as connection ids, after counting them apart from chunks", () => {
    const [a, b] = firstBatch(1) as [CapturedChunk, CapturedChunk];
    const notice: CapturedChunk = { ...b, data: Buffer.alloc(0), length: 0, streamOffset: 0 };
    const out: CapturedChunk[] = [];
    const closed: string[] = [];
    const stats = new ChunkEventDecoder().decodeDrained(
      encodeDrainBuffer([a, b, notice], WALL_OFFSET_NS),
      Infinity,
      WALL_OFFSET_NS,
      out,
      closed,
    );
    expect(stats).toEqual({ records: 2, closeNotices: 1, malformed: 0 });
    expect(out).toEqual([a, b]);
    expect(closed).toEqual([a.connId]);
  });
});
