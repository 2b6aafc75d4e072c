import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hdrcapPacketEventLayout } from "../../src/capture/packet/packet-layout.generated.ts";
import {
  IPPROTO_TCP,
  PACKET_EVENT_HEADER_SIZE,
  type PacketRecord,
  TcpSegmentDecoder,
  decodeDrainedPackets,
  tcpSegmentOf,
} from "../../src/capture/packet/packet-record.ts";

const F = hdrcapPacketEventLayout.fields;

/** Drain output framing: u32 length, u32 zero, the record, padded to 8. */
function frame(records: Buffer[]): Buffer {
  return Buffer.concat(
    records.map((r) => {
      const f = Buffer.alloc((8 + r.length + 7) & ~7);
      f.writeUInt32LE(r.length, 0);
      r.copy(f, 8);
      return f;
    }),
  );
}

const packetRecord = fc
  .record({
    header: fc.uint8Array({ minLength: PACKET_EVENT_HEADER_SIZE, maxLength: PACKET_EVENT_HEADER_SIZE }),
    family: fc.constantFrom(2, 10, 2, 10, 7),
    direction: fc.constantFrom(0, 1, 0, 1, 9),
    proto: fc.constantFrom(IPPROTO_TCP, IPPROTO_TCP, IPPROTO_TCP, 17),
    flags: fc.nat(0xffff),
    payload: fc.uint8Array({ maxLength: 64 }),
    extraLength: fc.nat(3000),
    comm: fc.constantFrom("", "nginx", "a-very-long-comm", "node"),
    tgid: fc.constantFrom(0, 0, 4242),
  })
  .map((r) => {
    const rec = Buffer.concat([Buffer.from(r.header), Buffer.from(r.payload)]);
    rec.writeUInt16LE(r.family, F.family.offset);
    rec.writeUInt8(r.direction, F.direction.offset);
    rec.writeUInt8(r.proto, F.ip_proto.offset);
    rec.writeUInt32LE(r.flags, F.flags.offset);
    rec.writeUInt16LE(r.payload.length, F.captured_len.offset);
    rec.writeUInt32LE(r.payload.length + r.extraLength, F.payload_len.offset);
    rec.fill(0, F.comm.offset, F.comm.offset + F.comm.size);
    rec.write(r.comm, F.comm.offset, Math.min(r.comm.length, F.comm.size), "latin1");
    rec.writeUInt32LE(r.tgid, F.tgid.offset);
    return rec;
  });

function segmentsOf(buf: Buffer, bytes = buf.length) {
  const out: Record<string, unknown>[] = [];
  const stats = new TcpSegmentDecoder().decode(buf, bytes, 1_000n, (s) => out.push({ ...s, payload: s.payload.toString("hex") }));
  return { stats, out };
}

const asSegment = (p: PacketRecord) => ({ ...tcpSegmentOf(p as PacketRecord & { tcp: NonNullable<PacketRecord["tcp"]> }), payload: p.payload.toString("hex") });

describe("TcpSegmentDecoder", () => {
  it("yields exactly the TCP fields decodePacketEvent reads, for the same records, and the same counts", () => {
    fc.assert(
      fc.property(fc.array(packetRecord, { maxLength: 12 }), fc.nat(40), (records, cut) => {
        const buf = frame(records);
        const bytes = Math.max(0, buf.length - cut); // sometimes a cut-off last frame
        const full: PacketRecord[] = [];
        const expectedStats = decodeDrainedPackets(buf, bytes, 1_000n, full);
        const { stats, out } = segmentsOf(buf, bytes);
        expect(stats).toEqual(expectedStats);
        expect(out).toEqual(full.filter((p) => p.tcp !== undefined).map(asSegment));
      }),
      { numRuns: 300 },
    );
  });

  it("never throws on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
        const buf = Buffer.from(bytes);
        const { stats } = segmentsOf(buf);
        expect(stats.malformed).toBeLessThanOrEqual(stats.records);
      }),
      { numRuns: 300 },
    );
  });

  it("hands out payloads that are views of the drain buffer, not copies", () => {
    const rec = Buffer.alloc(PACKET_EVENT_HEADER_SIZE + 3);
    rec.writeUInt16LE(2, F.family.offset);
    rec.writeUInt8(IPPROTO_TCP, F.ip_proto.offset);
    rec.writeUInt16LE(3, F.captured_len.offset);
    rec.writeUInt32LE(3, F.payload_len.offset);
    rec.write("abc", PACKET_EVENT_HEADER_SIZE, "latin1");
    const buf = frame([rec]);
    let view: Buffer | undefined;
    new TcpSegmentDecoder().decode(buf, buf.length, 0n, (s) => {
      view = s.payload;
    });
    expect(view?.buffer).toBe(buf.buffer);
    expect(view?.toString()).toBe("abc");
  });
});
