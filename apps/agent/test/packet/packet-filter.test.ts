import { describe, expect, it } from "vitest";
import {
  encodeCidrKey,
  encodePacketConfig,
  normalizePacketFilter,
  packetFilterSetKeys,
  parseCidr,
  parseIpAddress,
} from "../../src/capture/packet/packet-filter.ts";
import {
  HDRCAP_PKT_FILTER_CIDR,
  HDRCAP_PKT_FILTER_PORT,
  HDRCAP_PKT_PROTO_TCP,
  HDRCAP_PKT_PROTO_UDP,
  hdrcapPacketConfigLayout,
} from "../../src/capture/packet/packet-layout.generated.ts";
import {
  decodeDrainedPackets,
  decodePacketEvent,
  PACKET_EVENT_HEADER_SIZE,
  type PacketRecord,
} from "../../src/capture/packet/packet-record.ts";
import { hdrcapPacketEventLayout } from "../../src/capture/packet/packet-layout.generated.ts";

describe("packet filter", () => {
  it("parses IPv4 and IPv6 addresses, including :: and embedded IPv4", () => {
    expect(parseIpAddress("198.51.100.7")).toEqual(Buffer.from([198, 51, 100, 7]));
    expect(parseIpAddress("2001:db8::1")?.toString("hex")).toBe("20010db8000000000000000000000001");
    expect(parseIpAddress("::ffff:192.0.2.1")?.toString("hex")).toBe("00000000000000000000ffffc0000201");
    expect(parseIpAddress("::")?.toString("hex")).toBe("0".repeat(32));
    expect(parseIpAddress("nope")).toBeNull();
  });

  it("normalizes CIDRs to their network address and rejects bad ones", () => {
    expect(normalizePacketFilter({ cidrs: ["10.1.2.3/8", "2001:db8:ffff::1/32", "192.0.2.1"] }).cidrs).toEqual([
      "10.0.0.0/8",
      "2001:db8::/32",
      "192.0.2.1/32",
    ]);
    expect(() => parseCidr("10.0.0.0/33")).toThrow(RangeError);
    expect(() => parseCidr("fd00::/129")).toThrow(RangeError);
    expect(() => parseCidr("10.0.0.0/8/1")).toThrow(RangeError);
  });

  it("encodes LPM trie keys with the prefix length first", () => {
    expect(encodeCidrKey(parseCidr("10.0.0.0/8")).toString("hex")).toBe("080000000a000000");
    const keys = packetFilterSetKeys(normalizePacketFilter({ ports: [443], cidrs: ["fd00::/8", "192.0.2.0/24"] }));
    expect(keys.pkt_ports.map((k) => k.readUInt16LE(0))).toEqual([443]);
    expect(keys.pkt_cidr4).toHaveLength(1);
    expect(keys.pkt_cidr6).toHaveLength(1);
  });

  it("encodes the config: filter flags, protocol mask, sampling and payload length", () => {
    const L = hdrcapPacketConfigLayout.fields;
    const buf = encodePacketConfig(
      normalizePacketFilter({ ports: [80], cidrs: ["10.0.0.0/8"], protocols: ["tcp", "udp"], sampleEvery: 7, payloadBytes: 1500 }),
    );
    expect(buf.readUInt32LE(L.filter_flags.offset)).toBe(HDRCAP_PKT_FILTER_PORT | HDRCAP_PKT_FILTER_CIDR);
    expect(buf.readUInt32LE(L.protocols.offset)).toBe(HDRCAP_PKT_PROTO_TCP | HDRCAP_PKT_PROTO_UDP);
    expect(buf.readUInt32LE(L.sample_every.offset)).toBe(7);
    expect(buf.readUInt32LE(L.payload_bytes.offset)).toBe(1500);
    expect(encodePacketConfig(normalizePacketFilter({})).readUInt32LE(L.filter_flags.offset)).toBe(0);
  });

  it("rejects invalid ports, protocols, sampling and payload sizes", () => {
    expect(() => normalizePacketFilter({ ports: [0] })).toThrow(RangeError);
    expect(() => normalizePacketFilter({ protocols: ["icmp" as "tcp"] })).toThrow(RangeError);
    expect(() => normalizePacketFilter({ sampleEvery: 0 })).toThrow(RangeError);
    expect(() => normalizePacketFilter({ payloadBytes: 4097 })).toThrow(RangeError);
  });
});

describe("packet record decoding", () => {
  const F = hdrcapPacketEventLayout.fields;
  function record(payload: Buffer, payloadLen = payload.length): Buffer {
    const rec = Buffer.alloc(PACKET_EVENT_HEADER_SIZE + payload.length);
    rec.writeUInt16LE(10, F.family.offset);
    rec.writeUInt8(1, F.direction.offset);
    rec.writeUInt8(6, F.ip_proto.offset);
    Buffer.from("20010db8000000000000000000000001", "hex").copy(rec, F.saddr.offset);
    rec.writeUInt16LE(0x12, F.tcp_flags.offset);
    rec.writeUInt32LE(0xfffffff0, F.seq.offset);
    rec.writeUInt32LE(1 | 2 | 8, F.flags.offset);
    rec.writeUInt16LE(1440, F.mss.offset);
    rec.writeUInt8(7, F.wscale.offset);
    rec.writeUInt32LE(5, F.tsval.offset);
    rec.writeUInt32LE(payloadLen, F.payload_len.offset);
    rec.writeUInt16LE(payload.length, F.captured_len.offset);
    rec.write("curl", F.comm.offset, "latin1");
    payload.copy(rec, PACKET_EVENT_HEADER_SIZE);
    return rec;
  }

  it("decodes addresses, TCP flags and options present by flag bits", () => {
    const p = decodePacketEvent(record(Buffer.from("hi")), 1000n) as PacketRecord;
    expect(p).toMatchObject({ family: 6, src: "2001:db8::1", dst: "::", direction: "egress", comm: "curl", payload: Buffer.from("hi") });
    expect(p.tcp).toEqual({
      seq: 0xfffffff0,
      ack: 0,
      flags: 0x12,
      flagNames: ["SYN", "ACK"],
      window: 0,
      headerLength: 0,
      options: { mss: 1440, windowScale: 7, sackPermitted: false, timestamps: { tsval: 5, tsecr: 0 } },
    });
  });

  it("skips malformed records and stops at broken framing", () => {
    const good = record(Buffer.from("abc"));
    const bad = record(Buffer.from("abc"), 2); // captured more than the packet carried
    const frame = (r: Buffer) => {
      const f = Buffer.alloc((8 + r.length + 7) & ~7);
      f.writeUInt32LE(r.length, 0);
      r.copy(f, 8);
      return f;
    };
    const buf = Buffer.concat([frame(good), frame(bad), frame(good)]);
    const out: PacketRecord[] = [];
    expect(decodeDrainedPackets(buf, buf.length, 0n, out)).toEqual({ records: 3, malformed: 1 });
    expect(out).toHaveLength(2);
    const truncated: PacketRecord[] = [];
    // The bad record, then the cut-off last frame.
    expect(decodeDrainedPackets(buf, buf.length - 8, 0n, truncated)).toEqual({ records: 3, malformed: 2 });
    expect(truncated).toHaveLength(1);
  });
});
