import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type StreamPiece, TcpReassembler, type TcpSegment } from "../../src/capture/packet/tcp-reassembler.ts";

/** Cuts stream into segments at the given (sorted, distinct) cut points, numbered from seq isn + 1. */
function segment(stream: Buffer, cuts: number[], isn: number): TcpSegment[] {
  const points = [0, ...cuts.filter((c) => c > 0 && c < stream.length), stream.length];
  const segs: TcpSegment[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const from = points[i]!;
    const to = points[i + 1]!;
    if (to > from) segs.push({ seq: (isn + 1 + from) % 2 ** 32, length: to - from, data: stream.subarray(from, to) });
  }
  return segs;
}

/** Asserts the pieces tile [0, end) in order without gaps and returns their bytes. */
function contiguous(pieces: StreamPiece[]): Buffer {
  let at = 0;
  for (const p of pieces) {
    expect(p.streamOffset).toBe(at);
    expect(p.data.length).toBe(p.length);
    at += p.length;
  }
  return Buffer.concat(pieces.map((p) => p.data));
}

const streamArb = fc.uint8Array({ minLength: 1, maxLength: 3000 }).map((a) => Buffer.from(a));
const isnArb = fc.oneof(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 2 ** 32 - 3000, max: 2 ** 32 - 1 }));
const cutsArb = fc.uniqueArray(fc.integer({ min: 1, max: 2999 }), { maxLength: 40 }).map((c) => c.sort((a, b) => a - b));

/** A shuffled list of the segments, each appearing at least once (some several times). */
function shuffledWithDuplicates(segs: TcpSegment[], keys: number[], dupes: number[]): TcpSegment[] {
  const all = [...segs, ...dupes.map((d) => segs[d % segs.length]!)];
  return all
    .map((s, i) => ({ s, k: keys[i % Math.max(1, keys.length)]! + i / 1e6 }))
    .sort((a, b) => a.k - b.k)
    .map((x) => x.s);
}

describe("TcpReassembler", () => {
  it("reassembles any permutation with duplicates of the segments within the window to the exact stream", () => {
    fc.assert(
      fc.property(
        streamArb,
        cutsArb,
        cutsArb,
        isnArb,
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 100 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (stream, cuts, recuts, isn, keys, dupes) => {
          // Retransmits may be repacketized: mix two segmentations of the same stream.
          const segs = [...segment(stream, cuts, isn), ...segment(stream, recuts, isn).filter((_, i) => i % 3 === 0)];
          const r = new TcpReassembler({ windowBytes: 1 << 20 });
          const pieces = r.push({ seq: isn, syn: true, length: 0, data: Buffer.alloc(0) });
          for (const s of shuffledWithDuplicates(segs, keys, dupes)) pieces.push(...r.push(s));
          pieces.push(...r.flush());
          expect(contiguous(pieces).equals(stream)).toBe(true);
          expect(r.stats.gaps).toBe(0);
          expect(r.nextOffset).toBe(stream.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("reports each lost segment as a gap: the stream offset jumps over exactly its bytes", () => {
    fc.assert(
      fc.property(
        streamArb,
        cutsArb,
        isnArb,
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 60 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 60 }),
        (stream, cuts, isn, keys, lostFlags) => {
          const segs = segment(stream, cuts, isn);
          const lost = segs.map((_, i) => lostFlags[i % lostFlags.length]! && i < segs.length - 1);
          const kept = segs.filter((_, i) => !lost[i]);
          const r = new TcpReassembler();
          const pieces = r.push({ seq: isn, syn: true, length: 0, data: Buffer.alloc(0) });
          for (const s of shuffledWithDuplicates(kept, keys, [])) pieces.push(...r.push(s));
          pieces.push(...r.flush());
          // Every delivered byte is the stream's byte at that offset, in increasing order.
          const covered = new Uint8Array(stream.length);
          let at = 0;
          for (const p of pieces) {
            expect(p.streamOffset).toBeGreaterThanOrEqual(at);
            expect(p.data.equals(stream.subarray(p.streamOffset, p.streamOffset + p.length))).toBe(true);
            covered.fill(1, p.streamOffset, p.streamOffset + p.length);
            at = p.streamOffset + p.length;
          }
          // ... and the bytes not delivered are exactly those of the lost segments.
          segs.forEach((s, i) => {
            const from = (s.seq - isn - 1 + 2 ** 32) % 2 ** 32;
            const want = lost[i] ? 0 : 1;
            for (let b = from; b < from + s.length; b++) expect(covered[b]).toBe(want);
          });
          const lostRuns = lost.filter((l, i) => l && !lost[i - 1]).length;
          expect(r.stats.gaps).toBe(lostRuns);
          expect(r.stats.gapBytes).toBe(segs.reduce((n, s, i) => n + (lost[i] ? s.length : 0), 0));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("counts offsets from the byte after the SYN, across sequence number wraparound", () => {
    const r = new TcpReassembler();
    expect(r.push({ seq: 2 ** 32 - 2, syn: true, length: 0, data: Buffer.alloc(0) })).toEqual([]);
    const a = r.push({ seq: 2 ** 32 - 1, length: 3, data: Buffer.from("abc") });
    const b = r.push({ seq: 2, length: 2, data: Buffer.from("de") });
    expect(a).toEqual([{ streamOffset: 0, length: 3, data: Buffer.from("abc") }]);
    expect(b).toEqual([{ streamOffset: 3, length: 2, data: Buffer.from("de") }]);
  });

  it("starts at the first segment seen when the handshake was missed", () => {
    const r = new TcpReassembler();
    expect(r.push({ seq: 1000, length: 4, data: Buffer.from("GET ") })).toEqual([
      { streamOffset: 0, length: 4, data: Buffer.from("GET ") },
    ]);
    expect(r.push({ seq: 1004, length: 1, data: Buffer.from("/") })[0]?.streamOffset).toBe(4);
  });

  it("drops retransmitted bytes and trims partial overlaps", () => {
    const r = new TcpReassembler();
    r.push({ seq: 0, syn: true, length: 0, data: Buffer.alloc(0) });
    expect(r.push({ seq: 1, length: 4, data: Buffer.from("abcd") })).toHaveLength(1);
    expect(r.push({ seq: 1, length: 4, data: Buffer.from("abcd") })).toEqual([]);
    expect(r.push({ seq: 3, length: 4, data: Buffer.from("cdef") })).toEqual([
      { streamOffset: 4, length: 2, data: Buffer.from("ef") },
    ]);
    expect(r.stats.duplicateSegments).toBe(1);
    expect(r.stats.trimmedSegments).toBe(1);
  });

  it("keeps uncaptured payload bytes as length beyond the data, never inventing bytes", () => {
    const r = new TcpReassembler();
    r.push({ seq: 0, syn: true, length: 0, data: Buffer.alloc(0) });
    expect(r.push({ seq: 1, length: 10, data: Buffer.from("head") })).toEqual([
      { streamOffset: 0, length: 10, data: Buffer.from("head") },
    ]);
    // A retransmit overlapping the uncaptured part delivers only the new bytes' captured prefix.
    expect(r.push({ seq: 3, length: 12, data: Buffer.from("adXXXXXXXXXX") })).toEqual([
      { streamOffset: 10, length: 4, data: Buffer.from("XXXX") },
    ]);
  });

  it("gives up on a hole once held data would extend past the window", () => {
    const r = new TcpReassembler({ windowBytes: 100 });
    r.push({ seq: 0, syn: true, length: 0, data: Buffer.alloc(0) });
    expect(r.push({ seq: 51, length: 40, data: Buffer.alloc(40, 1) })).toEqual([]);
    const out = r.push({ seq: 91, length: 40, data: Buffer.alloc(40, 2) });
    expect(out.map((p) => [p.streamOffset, p.length])).toEqual([
      [50, 40],
      [90, 40],
    ]);
    expect(r.stats).toMatchObject({ gaps: 1, gapBytes: 50 });
    // The hole's bytes arriving late are duplicates now.
    expect(r.push({ seq: 1, length: 50, data: Buffer.alloc(50) })).toEqual([]);
  });

  it("gives up on a hole when too many segments are held", () => {
    const r = new TcpReassembler({ maxHeldSegments: 2 });
    r.push({ seq: 0, syn: true, length: 0, data: Buffer.alloc(0) });
    expect(r.push({ seq: 11, length: 1, data: Buffer.from("b") })).toEqual([]);
    expect(r.push({ seq: 13, length: 1, data: Buffer.from("d") })).toEqual([]);
    const out = r.push({ seq: 15, length: 1, data: Buffer.from("f") });
    expect(out.map((p) => p.streamOffset)).toEqual([10]);
    expect(r.heldBytes).toBe(2);
  });
});
